"""Audio front end: decoding, manifests and Kaldi-compatible MFCC features."""
