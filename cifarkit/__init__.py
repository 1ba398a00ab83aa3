"""cifarkit: explore and train CIFAR image classifiers with Keras 3.

Importing the package is cheap: modules that need TensorFlow/Keras import it themselves.
"""

__version__ = "0.1.0"
