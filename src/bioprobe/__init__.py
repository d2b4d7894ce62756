"""bioprobe: fine-tune biomedical language models at several data volumes and probe them."""

__version__ = "0.1.0"
