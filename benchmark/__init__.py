"""cordbench: an open benchmark for spinal cord MRI segmentation."""

__version__ = "0.1.0"
