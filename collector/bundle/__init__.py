"""The bundle: its layout (schema), the scrubbing writer, the manifest, the archive and the reader."""
