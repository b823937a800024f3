"""Is this upload audio? The first bytes say so, whatever the browser claimed.

The page's ``accept="audio/*"`` and the declared content type are hints a client
controls; a creator who picks a PDF (or renames one ``.mp3``) would otherwise get a
track that never plays and an HLS job that fails. The server looks at the content
itself: the first chunk must start like an audio container or stream it recognises.
ffprobe would know more formats, but it is optional here (like ffmpeg), and the magic
numbers of the formats browsers play are short and stable.
"""

from __future__ import annotations

AUDIO_PREFIX = "audio/"
HEAD = 12
"""How many leading bytes :func:`looks_like_audio` needs."""

NOT_AUDIO = (
    "This file is not audio: upload an MP3, WAV, FLAC, Ogg/Opus, AAC/M4A, AIFF or WebM audio file."
)
"""What a creator reads when the content is refused (the same words on the page)."""

NOT_AUDIO_TYPE = (
    "Only audio files can be uploaded as tracks (this one says it is {content_type!r})."
)

_PREFIXES = (
    b"ID3",  # MP3 with an ID3v2 tag
    b"fLaC",  # FLAC
    b"OggS",  # Ogg: Vorbis, Opus, FLAC-in-Ogg
    b"#!AMR",  # AMR
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"MAC ",  # Monkey's Audio
    b"wvpk",  # WavPack
    b".snd",  # Sun/NeXT au
)


def looks_like_audio(head: bytes) -> bool:
    """Whether ``head`` (a file's first :data:`HEAD` bytes or more) starts like audio.

    Args:
        head: The file's first bytes.

    Returns:
        ``True`` for the containers and raw streams listed above, RIFF/WAVE,
        AIFF/AIFC, ISO BMFF (``ftyp``: M4A, MP4 audio) and MPEG audio or ADTS frames
        (an 11-bit frame sync); ``False`` otherwise.
    """
    if head.startswith(_PREFIXES):
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"RF64"):
        return True
    if head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    if head[4:8] == b"ftyp":
        return True
    # MPEG-1/2 audio or ADTS AAC: 11 sync bits, then a version and layer that exist
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
        adts = head[1] & 0xF6 == 0xF0  # ADTS: 12 sync bits, layer 00
        return version != 0b01 and (layer != 0b00 or adts)
    return False


def is_audio_type(content_type: str) -> bool:
    """Whether a declared content type is an audio one (``audio/...``)."""
    return content_type.lower().startswith(AUDIO_PREFIX)
