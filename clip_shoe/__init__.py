"""Shoe search by text (Vietnamese and English) and by photo on a CLIP model fine-tuned for shoes"""

__version__ = "0.1.0"
