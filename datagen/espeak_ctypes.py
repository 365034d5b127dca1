"""Minimal ctypes binding to libespeak-ng, just enough to get audio + phone timings.

Why the C library and not the ``espeak-ng`` command line: the CLI can write a
WAV and can print phonemes (``-x``), but it cannot say *when* each phoneme
starts.  The library can: initialised with ``espeakINITIALIZE_PHONEME_EVENTS``
it reports an ``espeakEVENT_PHONEME`` event carrying the phoneme mnemonic and
the sample index at which it begins, in the same callback that delivers the
audio.  Those events are what the demo corpus alignments are built from.

Struct layout and enum values follow ``/usr/include/espeak-ng/speak_lib.h``
(API revision 12, espeak-ng 1.51).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field

import numpy as np

# espeak_AUDIO_OUTPUT
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize options
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
# espeak_EVENT_TYPE
espeakEVENT_LIST_TERMINATED = 0
espeakEVENT_WORD = 1
espeakEVENT_PHONEME = 7
# espeak_POSITION_TYPE
POS_CHARACTER = 1
# espeak_Synth flags
espeakCHARS_UTF8 = 1
espeakENDPAUSE = 0x1000
# espeak_PARAMETER
espeakRATE = 1
espeakVOLUME = 2
espeakPITCH = 3
espeakRANGE = 4
espeakWORDGAP = 7
# espeak_ERROR
EE_OK = 0


class _EventId(ctypes.Union):
    # id.string is char[8], NUL-terminated *unless* the name fills all 8 bytes.
    # The callback reads the 8 raw bytes with ctypes.string_at and cuts at the
    # first NUL itself, so a full-length name is never read past its end.
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),  # espeak_EVENT_TYPE (a C enum: int-sized)
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms, truncated
        ("sample", ctypes.c_int),  # sample index within the message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent)
)


@dataclass
class Synthesis:
    """Result of one ``espeak_Synth`` call at the engine's native rate."""

    audio: np.ndarray  # int16, mono
    sample_rate: int
    phonemes: list[tuple[int, str]] = field(default_factory=list)  # (start sample, mnemonic)
    words: list[tuple[int, int]] = field(default_factory=list)  # (start sample, word number)


class Espeak:
    """One process-wide espeak-ng engine in synchronous retrieval mode.

    espeak-ng keeps global state, so this is effectively a singleton; create it
    once and reuse it.  Voice selection returns an error code when the name is
    unknown instead of silently keeping the previous voice, so a typo in a voice
    table cannot quietly produce a corpus with fewer speakers than it claims.
    """

    def __init__(self, library: str | None = None, buflength_ms: int = 100):
        path = library or ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(path)
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(EspeakVoice)]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Info.restype = ctypes.c_char_p
        self.lib.espeak_Info.argtypes = [ctypes.c_void_p]
        rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, buflength_ms, None, espeakINITIALIZE_PHONEME_EVENTS
        )
        if rate <= 0:
            raise RuntimeError("espeak_Initialize failed (espeak-ng-data not found?)")
        self.sample_rate = rate
        self.version = self.lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[int, str]] = []
        self._words: list[tuple[int, int]] = []
        # keep a reference: the C side holds only the raw function pointer
        self._callback = _SYNTH_CALLBACK(self._on_synth)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, numsamples, events) -> int:
        if wav and numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        while events[i].type != espeakEVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == espeakEVENT_PHONEME:
                raw = ctypes.string_at(ctypes.addressof(ev.id), 8).split(b"\0", 1)[0]
                self._phonemes.append((ev.sample, raw.decode("utf-8")))
            elif ev.type == espeakEVENT_WORD:
                self._words.append((ev.sample, ev.id.number))
            i += 1
        return 0  # 0 = continue

    def set_voice(self, name: str) -> None:
        """Select by name (``en-us``, ``en-us+f3``); fall back to language properties."""
        if self.lib.espeak_SetVoiceByName(name.encode()) == EE_OK:
            return
        spec = EspeakVoice(languages=name.split("+")[0].encode())
        if self.lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != EE_OK:
            raise ValueError(f"espeak-ng has no voice {name!r}")

    def set_params(
        self, rate: int, pitch: int, pitch_range: int, word_gap: int = 0, volume: int = 100
    ) -> None:
        """Absolute (not relative) rate in wpm, pitch/range 0-100, word gap in 10 ms units."""
        for param, value in (
            (espeakRATE, rate),
            (espeakPITCH, pitch),
            (espeakRANGE, pitch_range),
            (espeakWORDGAP, word_gap),
            (espeakVOLUME, volume),
        ):
            if self.lib.espeak_SetParameter(param, value, 0) != EE_OK:
                raise RuntimeError(f"espeak_SetParameter({param}, {value}) failed")

    def synth(self, text: str) -> Synthesis:
        """Speak ``text`` (UTF-8, with the end-of-sentence pause) and collect everything."""
        self._chunks, self._phonemes, self._words = [], [], []
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        flags = espeakCHARS_UTF8 | espeakENDPAUSE
        err = self.lib.espeak_Synth(buf, len(data), 0, POS_CHARACTER, 0, flags, None, None)
        if err != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with {err}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        if self._phonemes and max(s for s, _ in self._phonemes) > len(audio):
            raise RuntimeError("phoneme event past end of audio: event sample base changed?")
        return Synthesis(audio.astype(np.int16), self.sample_rate, self._phonemes, self._words)
