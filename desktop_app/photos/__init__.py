"""Photos on disk: finding them and turning them into the encoder's pixels."""
