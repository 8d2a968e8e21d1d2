"""The names every layer shares: run tags, artifact names, files in a sweep's folder.

The bottom of the package: it imports nothing of aesweep, so that a job, the sweep's
parent, ``report.py`` and the tests agree on these names without importing each other.
"""

# --- Tags on a job's run ------------------------------------------------------------------
FINGERPRINT_TAG = "aesweep.config_hash"  # what resume=true matches finished runs by
TRAINING_TAG = "aesweep.training_hash"  # on runs that logged a model: what reuse matches
OBJECTIVE_TAG = "aesweep.objective"  # the metric a run returned to the sweeper
SELECTION_TAG = "aesweep.data_selection"  # its digits' settings and seed (JSON)
RESUMED_FROM_TAG = "aesweep.resumed_from"  # on a copy (resume): the run that did the work
MODEL_URI_TAG = "aesweep.model_uri"  # on a run that logged its trained autoencoder
#: on a fine-tuned run: its model image -> q (the encoder with DEC's clustering head)
CLUSTERING_MODEL_URI_TAG = "aesweep.clustering_model_uri"
MODEL_FROM_TAG = "aesweep.model_from"  # on a run that reused another run's autoencoder
TRIAL_TAG = "aesweep.trial"  # on a search's job: its Optuna trial number
JOB_DIR_TAG = "aesweep.job_dir"  # on a sweep's job: its Hydra job folder
HOST_TAG = "aesweep.host"  # the machine whose process runs the run (with PID_TAG):
PID_TAG = "aesweep.pid"  # how a resume tells a killed job's RUNNING run from a live one
FAILURE_TAG = "failure_reason"  # on a FAILED or KILLED run: why, in one line
EPOCHS_REACHED_TAG = "epochs_reached"  # on a diverged run: the epoch it blew up at
REPLICATES_TAG = "aesweep.replicates"  # equal for runs that differ only in their seed
OVERRIDES_TAG = "overrides"  # the job's command-line overrides, shell-quoted

# --- Tags on a sweep's parent run ---------------------------------------------------------
ROLE_TAG = "aesweep.role"  # "sweep" on parent runs, so the latest sweep can be found
SWEEP_DIR_TAG = "aesweep.sweep_dir"  # its multirun folder: where jobs without a run lie
SEARCH_TAG = "aesweep.search"  # on a search's parent: its Optuna study, shared by resumptions
REFERENCES_ARTIFACT = "references.json"  # on the parent: KMeans on the pixels, per selection

# --- Artifacts of a job's run -------------------------------------------------------------
PANEL_ARTIFACT = "latents/panel.npz"  # one digit of each label with its latent vector
MAP_ARTIFACT = "latents/map.npz"  # a run's 2-D map of its latents, for the sweep's figure
FINGERPRINTS_ARTIFACT = "fingerprints.json"  # what each fingerprint of the run was made of

# --- Files in a sweep's folder ------------------------------------------------------------
SUMMARY_TABLE = "summary_table.json"  # the sweep's table, as mlflow.log_table writes it
PARENT_FILE = "mlflow_parent_run.json"  # how jobs find their parent
SEARCH_FILE = "search.json"  # a search's study and trials (aesweep.search_record)
FAILURE_FILE = "aesweep_failure.txt"  # in a job's folder: the one line a failed job ended on

TRIAL_ENV = "AESWEEP_TRIAL"  # in a search's job (hydra.job.env_set): its Optuna trial number

SEARCH_SWEEPER = "AesweepOptunaSweeper"  # hydra/sweeper=aesweep_optuna (hparams_search=optuna)
