"""Faces in aligned frame pairs: S3FD boxes, face-alignment's FAN landmarks, insightface's ArcFace embeddings
(for LMD and CSIM)."""
