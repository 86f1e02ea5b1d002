"""How an independent decoder reads mail: Python 3's `email` package.

For each file of a directory, prints (as one JSON array) what Python reads:

- `subject`: the Subject header decoded with `email.policy.default`
  (RFC 2047 encoded words in every charset Python has a codec for, white
  space made single), or null with `why` when Python cannot read one (no
  Subject header, an unknown charset, bytes it cannot decode: U+FFFD,
  escape sequences or encoded words left as they are);
- `piece`: what a user would type to find the message by its subject: for
  text written without spaces (Japanese, Chinese, Korean), 3 characters from
  the middle of its longest run of it (2 if the run is that short); else its
  longest word (a run of letters and digits);
- `words`: up to 5 words (3 characters or more) from the start of the first
  text part (`get_body(("plain", "html"))`, HTML without its tags, head,
  styles, scripts and comments), when Python decodes it cleanly.

Usage: python3 python_email.py DIR
"""

import email
import email.policy
import html
import json
import os
import re
import sys

WORD = re.compile(r"[^\W_]+")


def readable(s):
    return (
        s is not None
        and s.strip() != ""
        and "\ufffd" not in s
        and "\x1b" not in s
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
        and not re.search(r"=\?[^?\s]+\?[bBqQ]\?", s)
    )


CJK = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003ffff]+"
)


def piece_of(subject):
    # Text written without spaces (Japanese, Chinese, Korean): a piece of 3
    # characters from the middle of its longest run (2 if that is all).
    runs = CJK.findall(subject)
    if runs:
        r = max(runs, key=len)
        if len(r) >= 2:
            mid = max(0, (len(r) - 3) // 2)
            return r[mid : mid + 3]
    # Else its longest word, as a user types a word.
    words = [w for w in WORD.findall(CJK.sub(" ", subject))]
    if not words:
        return None
    w = max(words, key=len)
    return w if len(w) >= 2 else None


def first_text(msg):
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            return None
        text = part.get_content()
    except Exception:
        return None
    if not isinstance(text, str) or not readable(text):
        return None
    if part.get_content_subtype() == "html":
        # What a mail client does not show: the head (title, styles),
        # scripts, styles and comments.
        text = re.sub(r"(?is)<(head|script|style|title)\b.*?</\1\s*>", " ", text)
        text = re.sub(r"(?s)<!--.*?-->", " ", text)
        text = html.unescape(re.sub(r"(?s)<[^>]*>", " ", text))
    return text


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    out = {"file": os.path.basename(path), "subject": None, "piece": None, "words": []}
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as e:
        out["why"] = "Python cannot parse it: %s" % e
        return out
    try:
        raw = msg.get("subject")
        subject = None if raw is None else " ".join(str(raw).split())
    except Exception as e:
        out["why"] = "Python cannot read its subject: %s" % e
        subject = None
    if raw is None:
        out["why"] = "no subject"
    elif readable(subject):
        out["subject"] = subject
        out["piece"] = piece_of(subject)
    else:
        out["why"] = "Python cannot decode its subject: %r" % subject
    text = first_text(msg)
    if text:
        out["words"] = [w for w in WORD.findall(text) if len(w) >= 3][:5]
    return out


def main():
    d = sys.argv[1]
    files = sorted(f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))
    json.dump([read(os.path.join(d, f)) for f in files], sys.stdout, ensure_ascii=False)


main()
