"""Models and their input, shared by every stage below the pipelines: architectures from
tf_keras.applications, the one tf.data stream of face crops (inputs.py), compression with tfmot,
TFLite export, inspection and the one LiteRT runner (tflite_runner.py).

The package itself imports no TensorFlow; most submodules do (tflite_runner and tflite_inspection
load only LiteRT, when first called).
"""
