"""Models and their input: architectures from tf_keras.applications and tf.data pipelines.

Shared by training, optimization (fine-tuning, representative data) and evaluation. Importing a
submodule imports TensorFlow; the package itself does not.
"""
