"""Faster CPU formulations of the cnn's layers: the same mathematics in fewer memory passes.

On a CPU, TensorFlow's kernels for the seed's cnn spend most of their time on tensors
with few channels (a 10 -> 1 convolution, a 5 x 5 max pooling over 10 channels), which
vectorise poorly. The functions here compute the same outputs and gradients with matrix
products and shifted-slice sums instead. Only the ``call`` of a layer instance changes:
the layers stay Keras' own, so a saved model loads anywhere without aesweep, and with a
GPU (or another Keras backend) Keras' own kernels run, as they are faster there.

Equality with Keras' layers (outputs and gradients on the same weights) is tested in
``tests/test_kernels.py``.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import layers

# The names models.py gives the cnn's layers, by which the CPU formulations find them.
# Defined here, not in models.py, because models.py imports this module.
POOL_LAYER = "enc_pool"
PROJECT_LAYER = "dec_project"
UPSAMPLE_LAYER = "dec_convT"
RECONSTRUCTION_LAYER = "reconstruction"

# Keras' Adam keeps its slots in private attributes (Keras 3.x); fused_adam reads these.
_ADAM_PRIVATE_API = ("_get_variable_index", "_momentums", "_velocities")


def enabled() -> bool:
    """Whether the CPU formulations apply: TensorFlow backend and no GPU visible."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def separable_max_pooling(layer: layers.MaxPooling2D) -> layers.MaxPooling2D:
    """Make a stride-1, 'valid' ``MaxPooling2D`` compute its windows as two 1-D passes.

    The maximum over a k x k window is the maximum over k rows of the maxima over k
    columns, so outputs are identical. The row pass treats width x channels as one wide
    channel axis, which TensorFlow's pooling kernels vectorise far better than 10
    channels; the column pass is Keras' own. Forward and backward take about half the
    time of one 5 x 5 pass.
    """
    import tensorflow as tf

    pool_h, pool_w = layer.pool_size
    if layer.strides != (1, 1) or layer.padding != "valid" or layer.data_format != "channels_last":
        return layer

    def call(inputs):
        _, height, width, channels = inputs.shape
        wide = tf.reshape(inputs, (-1, height, 1, width * channels))
        rows = tf.nn.max_pool2d(wide, ksize=(pool_h, 1), strides=1, padding="VALID")
        rows = tf.reshape(rows, (-1, height - pool_h + 1, width, channels))
        return tf.nn.max_pool2d(rows, ksize=(1, pool_w), strides=1, padding="VALID")

    layer.call = call
    return layer


def upsampling_decoder(decoder: keras.Model) -> keras.Model:
    """Make the cnn decoder run its two image layers as matrix products on a phase grid.

    The decoder is ``[dense] -> reshape (h, w, 1) -> Conv2DTranspose(c, k1, stride s,
    'same') -> Conv2D(1, k2, 'same')``. Written on the s x s phases of the output grid,
    the transposed convolution is one product of (h*w, taps) patches of the small input
    with a (taps, s*s*c) matrix, and the last convolution a small convolution (3 x 3 for
    the seed's 4 x 4 kernels) of that phase image with s*s outputs, done as one product
    and shifted-window sums; the c-channel image at full resolution, which
    TensorFlow's kernels handle slowly, is never formed. Weights are gathered from the
    layers' own kernels, so gradients reach them unchanged.
    """
    up = decoder.get_layer(UPSAMPLE_LAYER)
    out = decoder.get_layer(RECONSTRUCTION_LAYER)
    if not _fits_phase_decoder(up, out):
        return decoder
    before = [layer for layer in decoder.layers[1:] if layer.name == PROJECT_LAYER]
    _, height, width, _ = up.input.shape
    stride = up.strides[0]
    up_index, up_offsets = _transpose_phase_index(up.kernel_size[0], stride, up.filters)
    out_index, out_pads = _conv_phase_index(out.kernel_size[0], stride, up.filters)

    def call(inputs, training=None, mask=None):
        import tensorflow as tf

        x = before[0](inputs) if before else inputs
        image = tf.reshape(x, (-1, height, width))
        up_weights = tf.concat(
            [_gather(up.kernel, up_index), tf.tile(up.bias[None, :], (1, stride * stride))], 0
        )
        hidden = up.activation(_patch_product(image, up_weights, up_offsets))
        phases = _phase_conv(hidden, _gather(out.kernel, out_index), out_pads, height, width)
        # (s, s, batch, h, w) -> (batch, h, s, w, s): phase (i, j) of pixel (m, n) is (s*m+i, s*n+j)
        image = tf.transpose(
            tf.reshape(phases, (stride, stride, -1, height, width)), (2, 3, 0, 4, 1)
        )
        image = tf.reshape(image, (-1, height * stride, width * stride, 1))
        return out.activation(image + out.bias)

    decoder.call = call
    return decoder


def _fits_phase_decoder(up: layers.Conv2DTranspose, out: layers.Conv2D) -> bool:
    square = up.kernel_size[0] == up.kernel_size[1] and out.kernel_size[0] == out.kernel_size[1]
    return (
        square
        and up.strides[0] == up.strides[1]
        and up.padding == out.padding == "same"
        and out.strides == (1, 1)
        and up.dilation_rate == out.dilation_rate == (1, 1)
        and up.data_format == out.data_format == "channels_last"
        and up.input.shape[-1] == 1
        and out.filters == 1
        and up.compute_dtype == out.compute_dtype == "float32"
    )


def _gather(kernel, index: np.ndarray):
    """``kernel`` entries at ``index``; the index one past the end reads a zero."""
    import tensorflow as tf

    flat = tf.concat([tf.reshape(kernel, [-1]), tf.zeros([1], kernel.dtype)], 0)
    return tf.gather(flat, index)


def _transpose_phase_index(kernel_size: int, stride: int, filters: int):
    """Where each (input offset, output phase, filter) weight of a transposed conv lives.

    A 'same' transposed convolution gives output pixel ``s*m + p`` the sum over kernel
    positions ``kk = s*d + p + pad`` of ``input[m - d] * kernel[kk]``. Returns the index
    array of shape (n_offsets**2, s*s*filters) into the flattened (kh, kw, filters, 1)
    kernel, and the list of offsets ``d``.
    """
    pad = (kernel_size - stride) // 2
    taps = {}  # (phase, offset) -> kernel position
    for phase in range(stride):
        for position in range(kernel_size):
            offset, rest = divmod(position - phase - pad, stride)
            if rest == 0:
                taps[phase, offset] = position
    offsets = sorted({offset for _, offset in taps})
    missing = kernel_size * kernel_size * filters
    index = np.full((len(offsets) ** 2, stride * stride * filters), missing, dtype=np.int32)
    for a, (di, dj) in enumerate((di, dj) for di in offsets for dj in offsets):
        for pi in range(stride):
            for pj in range(stride):
                if (pi, di) in taps and (pj, dj) in taps:
                    position = taps[pi, di] * kernel_size + taps[pj, dj]
                    columns = (pi * stride + pj) * filters + np.arange(filters)
                    index[a, columns] = position * filters + np.arange(filters)
    return index, offsets


def _conv_phase_index(kernel_size: int, stride: int, channels: int):
    """A stride-1 'same' conv (channels -> 1) rewritten on the stride-``s`` phase grid.

    Output pixel ``s*M + q`` reads input ``s*M + q + kk - pad = s*(M + e) + p``: a
    convolution over coarse offsets ``e`` from the s*s*channels phase image to s*s output
    phases. Returns the index array of shape (E, E, s*s*channels, s*s) into the flattened
    (k, k, channels, 1) kernel and the coarse padding (before, after).
    """
    pad = (kernel_size - 1) // 2
    coarse = sorted({(q + kk - pad) // stride for q in range(stride) for kk in range(kernel_size)})
    missing = kernel_size * kernel_size * channels
    index = np.full((len(coarse),) * 2 + (stride * stride * channels, stride * stride), missing)
    for qi in range(stride):
        for qj in range(stride):
            for ki in range(kernel_size):
                for kj in range(kernel_size):
                    ei, pi = divmod(qi + ki - pad, stride)
                    ej, pj = divmod(qj + kj - pad, stride)
                    rows = (pi * stride + pj) * channels + np.arange(channels)
                    where = (coarse.index(ei), coarse.index(ej), rows, qi * stride + qj)
                    index[where] = (ki * kernel_size + kj) * channels + np.arange(channels)
    return index.astype(np.int32), (-coarse[0], coarse[-1])


def _pad_image_axes(tensor, pads: tuple[int, int]):
    """``tensor`` (..., H, W) zero-padded by ``pads`` (before, after) on both image axes."""
    import tensorflow as tf

    return tf.pad(tensor, [[0, 0]] * (tensor.shape.rank - 2) + [list(pads)] * 2)


def _window_stack(tensor, pads: tuple[int, int], starts, height: int, width: int):
    """The (height, width) windows of padded ``tensor`` at each (row, column) start, stacked."""
    import tensorflow as tf

    padded = _pad_image_axes(tensor, pads)
    return tf.stack([padded[..., i : i + height, j : j + width] for i, j in starts])


def _window_sum(stack, pads: tuple[int, int], starts, height: int, width: int):
    """The sum over ``t`` of the window of padded ``stack[t]`` at ``starts[t]``."""
    import tensorflow as tf

    padded = _pad_image_axes(stack, pads)
    return tf.add_n(
        [padded[t, ..., i : i + height, j : j + width] for t, (i, j) in enumerate(starts)]
    )


def _patch_product(image, weights, offsets: list[int]):
    """``patches(image) @ weights`` with its gradient, for a one-channel image.

    image: (batch, h, w); weights: (n_offsets**2 + 1, n_out), the last row a bias.
    Patch column ``(di, dj)`` of pixel (m, n) is ``image[m - di, n - dj]`` (zero outside).
    Returns (batch, h, w, n_out). Patches are stored offset-major, so both products and
    the scatter back to the image in the gradient read contiguous memory.
    """
    import tensorflow as tf

    _, height, width = image.shape
    low, high = max(offsets), max(0, -min(offsets))
    starts = [(low - di, low - dj) for di in offsets for dj in offsets]
    back = [(di + high, dj + high) for di in offsets for dj in offsets]

    @tf.custom_gradient
    def product(image, weights):
        patches = _window_stack(image, (low, high), starts, height, width)
        patches = tf.reshape(
            tf.concat([patches, tf.ones_like(image)[None]], 0), (len(starts) + 1, -1)
        )
        result = tf.matmul(patches, weights, transpose_a=True)

        def grad(upstream):
            upstream = tf.reshape(upstream, (-1, weights.shape[1]))
            d_patches = tf.matmul(weights[:-1], upstream, transpose_b=True)
            d_patches = tf.reshape(d_patches, (len(starts), -1, height, width))
            d_image = _window_sum(d_patches, (high, low), back, height, width)
            return d_image, tf.matmul(patches, upstream)

        return tf.reshape(result, (-1, height, width, weights.shape[1])), grad

    return product(image, weights)


def _phase_conv(hidden, kernel, pads: tuple[int, int], height: int, width: int):
    """Stride-1 correlation of ``hidden`` (batch, h, w, c) with ``kernel`` (E, E, c, q).

    Zero padding ``pads`` on each side of both axes. Returns the result channel-major,
    (q, batch, h, w): one product of the (E*E*q, c) kernel with the image gives every
    tap's contribution, and the taps are summed as shifted windows.
    """
    import tensorflow as tf

    size, _, channels, n_out = kernel.shape
    low, high = pads
    starts = [(i, j) for i in range(size) for j in range(size)]
    back = [(size - 1 - i, size - 1 - j) for i, j in starts]

    @tf.custom_gradient
    def conv(hidden, kernel):
        taps = tf.reshape(tf.transpose(kernel, (0, 1, 3, 2)), (size * size * n_out, channels))
        flat = tf.reshape(hidden, (-1, channels))
        contributions = tf.reshape(
            tf.matmul(taps, flat, transpose_b=True), (len(starts), n_out, -1, height, width)
        )
        result = _window_sum(contributions, (low, high), starts, height, width)

        def grad(upstream):
            shifted = _window_stack(upstream, (high, low), back, height, width)
            shifted = tf.reshape(shifted, (len(starts) * n_out, -1))
            d_hidden = tf.reshape(tf.matmul(shifted, taps, transpose_a=True), tf.shape(hidden))
            d_taps = tf.reshape(tf.matmul(shifted, flat), (size, size, n_out, channels))
            return d_hidden, tf.transpose(d_taps, (0, 1, 3, 2))

        return result, grad

    return conv(hidden, kernel)


def fused_adam(optimizer: keras.optimizers.Adam) -> keras.optimizers.Adam:
    """Make a built Keras ``Adam`` update each variable with TensorFlow's fused Adam kernel.

    Keras' ``Adam.update_step`` runs its formula as about ten element-wise ops per
    variable, each a pass over memory; ``ResourceApplyAdam`` computes the same formula
    (``m += (g - m)(1 - b1)``, ``v += (g² - v)(1 - b2)``, ``w -= lr_t m / (√v + ε)`` with
    ``lr_t = lr √(1 - b2^t) / (1 - b1^t)``) in one pass, on Keras' own slot variables,
    so checkpoints and ``fit`` go on as before. Left as it is with AMSGrad, and, with a
    warning, when Keras' Adam lacks the private attributes that hold its slots.
    """
    import tensorflow as tf

    if optimizer.amsgrad:
        return optimizer
    missing = [name for name in _ADAM_PRIVATE_API if not hasattr(optimizer, name)]
    if missing:
        # A later Keras may rename its private slots: its own (slower) update is still right.
        warnings.warn(
            f"aesweep.kernels.fused_adam: the Adam of Keras {keras.__version__} has no "
            f"{', '.join(missing)}; Keras' own update runs instead of the fused kernel",
            RuntimeWarning,
            stacklevel=2,
        )
        return optimizer

    def update_step(gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(optimizer.iterations + 1, dtype)
        index = optimizer._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=optimizer._momentums[index].handle,
            v=optimizer._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(optimizer.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )

    optimizer.update_step = update_step
    return optimizer
