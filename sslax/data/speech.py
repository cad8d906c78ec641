"""A small speaker-identification corpus synthesised locally with espeak-ng,
for speech CPC (van den Oord et al. 2018, section 3.1) where LibriSpeech cannot
be downloaded; and MFCC features, the classic baseline of the CPC paper's
speaker table.

Each speaker is an espeak-ng voice (accent) with a voice variant and its own
pitch and speed; each utterance varies them a little and adds white noise at a
random signal-to-noise ratio. Sentences are random word sequences from a word
list. The split is by sentence: the sentences of the test split are never
spoken in the train split. Every utterance is stored as a fixed-length 16 kHz
int16 clip starting where speech starts.

``sslax data make-speech --out DIR`` writes ``DIR/{train,test}.npz`` and
``DIR/meta.json``; the config's ``data.data_dir`` points at ``DIR``.
"""

import concurrent.futures
import io
import os
import shutil
import subprocess
import wave
from typing import Optional, Sequence

import numpy as np

from sslax.data import corpus
from sslax.data.source import ArraySource
from sslax.errors import UserError

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050

# espeak-ng's English accents and voice variants; speaker i takes accent
# i % len(ACCENTS) and variant i % len(VARIANTS) (both lengths are coprime).
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "m6", "m7")

WORDS = tuple("""
apple river stone garden window yellow morning silver basket candle
little quiet yesterday forest ocean travel people answer number letter
mountain summer winter autumn spring orange purple kitchen table chair
coffee bottle paper pencil market street bridge castle island valley
doctor teacher farmer painter sailor soldier singer dancer driver baker
happy gentle clever brave careful honest simple sudden rapid distant
carry follow remember open close listen whisper wander gather borrow
seven eleven twenty hundred thousand several many every other another
under over between behind beyond across around toward without within
north south east west early later always never often seldom
cloud thunder lightning rainbow shadow sunlight moonlight starlight fire water
horse rabbit tiger eagle dolphin turtle spider monkey camel penguin
bread butter cheese honey pepper lemon tomato potato carrot onion
button ribbon pocket jacket blanket pillow mirror ladder hammer needle
music picture story theatre village railway harbour station library museum
""".split())


def default_corpus_dir() -> str:
  return os.path.join("data", "espeak_speakers")


def make_sentences(words: Sequence[str], count: int, rng: np.random.Generator,
                   min_words=10, max_words=14):
  """``count`` distinct sentences of random words."""
  if not words:
    raise UserError("the word list is empty; give --words a file with one or more "
                    "words (whitespace-separated)")
  sentences, seen = [], set()
  for _ in range(50 * count):
    n = int(rng.integers(min_words, max_words + 1))
    sentence = " ".join(rng.choice(words, size=n))
    if sentence not in seen:
      seen.add(sentence)
      sentences.append(sentence)
      if len(sentences) == count:
        return sentences
  raise UserError(f"the word list has too few distinct words ({len(set(words))}) to "
                  f"make {count} different sentences; give --words a longer list")


def speakers(num_speakers: int, seed: int):
  """Speaker i: accent, variant, base pitch (0-99) and speed (words/minute)."""
  rng = np.random.default_rng([seed, 7])
  return [{"accent": ACCENTS[i % len(ACCENTS)], "variant": VARIANTS[i % len(VARIANTS)],
           "pitch": int(rng.integers(25, 75)), "speed": int(rng.integers(140, 200))}
          for i in range(num_speakers)]


def find_espeak() -> str:
  path = shutil.which("espeak-ng")
  if path is None:
    raise UserError("espeak-ng is not installed; install it with "
                    "`apt-get install espeak-ng` (or run `make data`)")
  return path


def synthesize(espeak: str, text: str, voice: str, pitch: int, speed: int) -> np.ndarray:
  """espeak-ng's waveform of ``text`` at 16 kHz, float32 in [-1, 1]."""
  from scipy import signal  # pylint: disable=g-import-not-at-top
  out = subprocess.run([espeak, "-v", voice, "-p", str(pitch), "-s", str(speed),
                        "--stdout", text], capture_output=True, check=False)
  if out.returncode != 0 or not out.stdout:
    raise UserError(f"espeak-ng failed for voice {voice}: "
                    f"{out.stderr.decode(errors='replace').strip()[:200]}")
  with wave.open(io.BytesIO(out.stdout)) as w:
    rate = w.getframerate()
    audio = np.frombuffer(w.readframes(w.getnframes()), np.int16)
  audio = audio.astype(np.float32) / 32768.0
  return signal.resample_poly(audio, SAMPLE_RATE, rate).astype(np.float32)


def to_clip(audio: np.ndarray, clip_samples: int, snr_db: float,
            rng: np.random.Generator) -> np.ndarray:
  """From the first sample above 1% of the peak, ``clip_samples`` samples
  (zero-padded if the utterance is shorter), plus white noise at ``snr_db``;
  int16."""
  peak = np.max(np.abs(audio)) if audio.size else 0.0
  start = int(np.argmax(np.abs(audio) > 0.01 * peak)) if peak > 0 else 0
  clip = np.zeros(clip_samples, np.float32)
  part = audio[start:start + clip_samples]
  clip[:len(part)] = part
  power = np.mean(np.square(part)) if len(part) else 0.0
  clip += rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)) if power > 0 else 0.0,
                     clip_samples).astype(np.float32)
  return np.clip(np.round(clip * 32767), -32768, 32767).astype(np.int16)


def make_corpus(out: str, *, num_speakers=24, train_per_speaker=100,
                test_per_speaker=25, clip_seconds=2.0, words: Optional[Sequence[str]] = None,
                seed=0, workers: Optional[int] = None, log=print) -> dict:
  """Builds the corpus in ``out`` (or finds it there, built with the same
  settings); returns its meta dict."""
  words = list(WORDS if words is None else words)
  settings = {"num_speakers": num_speakers, "train_per_speaker": train_per_speaker,
              "test_per_speaker": test_per_speaker, "clip_seconds": clip_seconds,
              "seed": seed, "words": words}
  if num_speakers < 2 or train_per_speaker < 1 or test_per_speaker < 1:
    raise UserError("need at least 2 speakers and 1 train and 1 test utterance each")
  meta = corpus.built_meta(out, lambda m: m.get("settings") == settings, "speech corpus")
  if meta is not None:
    log(f"speech corpus already in {out}")
    return meta
  espeak = find_espeak()
  rng = np.random.default_rng(seed)
  # Disjoint sentence pools: a test sentence is never heard in training.
  pool = make_sentences(words, num_speakers * (train_per_speaker + test_per_speaker), rng)
  split_sentences = {"train": pool[:num_speakers * train_per_speaker],
                     "test": pool[num_speakers * train_per_speaker:]}
  voices = speakers(num_speakers, seed)
  clip_samples = int(round(clip_seconds * SAMPLE_RATE))
  jobs = {"train": [], "test": []}
  for split, per_speaker in (("train", train_per_speaker), ("test", test_per_speaker)):
    order = rng.permutation(len(split_sentences[split]))
    for s, v in enumerate(voices):
      for u in range(per_speaker):
        sentence = int(order[s * per_speaker + u])
        jobs[split].append(dict(
            speaker=s, sentence=sentence, text=split_sentences[split][sentence],
            voice=f"{v['accent']}+{v['variant']}",
            pitch=int(np.clip(v["pitch"] + rng.integers(-4, 5), 0, 99)),
            speed=int(v["speed"] + rng.integers(-8, 9)),
            snr_db=float(rng.uniform(20, 40)), noise_seed=int(rng.integers(2 ** 31))))

  def run(job):
    audio = synthesize(espeak, job["text"], job["voice"], job["pitch"], job["speed"])
    clip = to_clip(audio, clip_samples, job["snr_db"],
                   np.random.default_rng(job["noise_seed"]))
    return clip, len(audio)

  os.makedirs(out, exist_ok=True)
  short = 0
  with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool_:
    for split, split_jobs in jobs.items():
      results = list(pool_.map(run, split_jobs))
      short += sum(n < clip_samples for _, n in results)
      np.savez(os.path.join(out, f"{split}.npz"),
               waveforms=np.stack([c for c, _ in results]),
               labels=np.asarray([j["speaker"] for j in split_jobs], np.int32),
               sentences=np.asarray([j["sentence"] for j in split_jobs], np.int32))
      log(f"{split}: {len(split_jobs)} utterances")
  meta = {"settings": settings, "sample_rate": SAMPLE_RATE, "clip_samples": clip_samples,
          "speakers": voices, "padded_utterances": short,
          "sentences": split_sentences}
  corpus.write_meta(out, meta)
  log(f"speech corpus in {out}: {num_speakers} speakers, {clip_seconds} s clips at "
      f"{SAMPLE_RATE} Hz; {short} utterances shorter than a clip were zero-padded")
  return meta


def load_split(data_dir: str, split: str) -> ArraySource:
  """A split of the corpus as an ArraySource of int16 clips ``"audio"``
  [n, samples], labelled by speaker."""
  data_dir = data_dir or default_corpus_dir()
  return corpus.load_split(
      data_dir, split, what="speech corpus",
      build_hint=f"`sslax data make-speech --out {data_dir}` (or `make speech`)",
      array_key="waveforms", example_key="audio",
      num_classes=lambda m: m["settings"]["num_speakers"])


def _hz_to_mel(f):
  return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def _mel_to_hz(m):
  return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def mel_filterbank(num_mel: int, n_fft: int, sample_rate: int) -> np.ndarray:
  """[n_fft // 2 + 1, num_mel] triangular filters equally spaced on the HTK mel
  scale from 0 Hz to Nyquist."""
  edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2), num_mel + 2))
  freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
  lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  rising = (freqs[None] - lower) / (centre - lower)
  falling = (upper - freqs[None]) / (upper - centre)
  return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def mfcc(waveforms: np.ndarray, sample_rate=SAMPLE_RATE, num_mel=40, num_coeffs=20,
         window=400, hop=160, n_fft=512) -> np.ndarray:
  """Mel-frequency cepstral coefficients (Davis & Mermelstein 1980) [n, frames,
  num_coeffs] of waveforms [n, samples]: 25 ms Hamming windows every 10 ms,
  power spectrum, log mel energies, orthonormal DCT-II."""
  from scipy import fft  # pylint: disable=g-import-not-at-top
  waveforms = np.asarray(waveforms)
  x = waveforms.astype(np.float32)
  if np.issubdtype(waveforms.dtype, np.integer):  # int16 samples
    x = x / 32768.0
  frames = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)[..., ::hop, :]
  spectrum = np.abs(np.fft.rfft(frames * np.hamming(window).astype(np.float32),
                                n=n_fft)) ** 2
  energies = np.log(spectrum @ mel_filterbank(num_mel, n_fft, sample_rate) + 1e-10)
  return fft.dct(energies, type=2, norm="ortho", axis=-1)[..., :num_coeffs]


def mfcc_features(waveforms: np.ndarray, batch_size=256) -> np.ndarray:
  """One vector per clip: the mean and standard deviation over time of its
  MFCCs (2 x 20 values)."""
  out = []
  for start in range(0, len(waveforms), batch_size):
    c = mfcc(waveforms[start:start + batch_size])
    out.append(np.concatenate([c.mean(axis=1), c.std(axis=1)], axis=-1))
  return np.concatenate(out).astype(np.float32)
