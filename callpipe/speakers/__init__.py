"""Speakers of mono calls: voice clustering over timed words (:mod:`.diarize`) and roles (:mod:`.roles`)."""

from callpipe.speakers.attribute import mono_speakers

__all__ = ["mono_speakers"]
