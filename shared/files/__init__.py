"""Files and images in messages: upload, content-addressed storage, references, vacuum."""
