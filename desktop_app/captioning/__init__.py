"""From pixels to captions: onnxruntime sessions, the decode loop, and the folder pipeline."""
