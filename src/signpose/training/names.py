"""The files of a model folder, named once (no TensorFlow: `signpose recognise` checks a folder
before it pays for importing TensorFlow)."""

MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "training_curves.png"
SUMMARY_FILE = "train_summary.json"
CONFIG_FILE = "train_config.json"
TENSORBOARD_DIR = "tensorboard"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
TFLITE_FILE = "model.tflite"
# What evaluate predicted for each item (top-5), so a recogniser can be checked against it.
PREDICTIONS_FILE = "predictions.csv"
# What `signpose recognise` needs besides the model: the options of every step before training
# (clip, pose, features) and the train-only statistics.
CHAIN_FILE = "pipeline.json"
STATS_FILE = "global_stats.npz"
# Raw MediaPipe landmarks in, probabilities out (signpose.training.landmarks_model).
LANDMARKS_TFLITE_FILE = "model_landmarks.tflite"
