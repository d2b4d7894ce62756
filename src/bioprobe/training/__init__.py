"""Fine-tuning with the Hugging Face Trainer, and downstream evaluation."""
