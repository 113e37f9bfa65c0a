"""What the spoken-digit classifier (issue 7's yardstick) hears when a word is not alone.

    python benchmarks/digit_classifier_context.py [--seconds 0.75]

Every FSDD test utterance, cut to `--seconds` (the length of WaveNet's samples), three ways:
alone; followed by silence up to `--seconds`; and followed by the start of another test
utterance of a different digit up to `--seconds` (what a generator that does not stop after the
word produces: more speech). Prints the classifier's accuracy for each, one JSON line. A large
drop for the third says that samples which babble on after their word are scored down for it.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from genlab.data import fsdd
from genlab.data.audio import mulaw_decode
from genlab.tasks.audio import digit_accuracy, digit_classifier, load_data


def followed_by(clips: list[torch.Tensor], digits: torch.Tensor, length: int, seed: int):
    """Each clip (cut to `length`) continued by the start of a random clip of another digit,
    to `length` samples in all."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k, clip in enumerate(clips):
        other = k
        while int(digits[other]) == int(digits[k]):
            other = int(torch.randint(len(clips), (1,), generator=g))
        out.append(torch.cat([clip, clips[other]])[:length])
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=0.75, help="length of each scored clip")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    length = int(args.seconds * fsdd.SAMPLE_RATE)
    classifier = digit_classifier()
    test = load_data("fsdd", None, classifier.cfg).test
    clips = [mulaw_decode(test.clip(k))[:length] for k in range(len(test))]
    silence = [torch.cat([c, torch.zeros(length - len(c))]) for c in clips]
    ways = {"alone": clips, "then_silence": silence,
            "then_another_digit": followed_by(clips, test.digit, length, args.seed)}  # fmt: skip
    report = {"benchmark": "digit_classifier_context", "seconds": args.seconds, "n": len(clips)}
    for name, batch in ways.items():
        report[name] = round(digit_accuracy(classifier, batch, test.digit)["digit_accuracy"], 4)
    report["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
