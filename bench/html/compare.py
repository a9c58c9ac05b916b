# SPDX-License-Identifier: MIT (see LICENSE)
"""The parser measurement of bench/html_corpus.sh: parses each file with
html5lib (the spec-conformant reference) and compares the text and the
a[href] sets that compare.c printed for libxml2 and gumbo.

  compare.py list-of-files libxml2.out gumbo.out
"""
import re
import sys
import html5lib

SKIP = {"script", "style", "head", "template"}


def walk(el, text, links):
    if not isinstance(el.tag, str):          # a comment
        return
    tag = el.tag
    if tag == "a" and el.get("href") is not None:
        links.append(el.get("href"))
    if tag in SKIP:
        return
    if el.text:
        text.append(el.text)
    for c in el:
        walk(c, text, links)
        if c.tail:
            text.append(c.tail)


def reference(path):
    with open(path, "rb") as f:
        doc = html5lib.parse(f.read(), namespaceHTMLElements=False)
    text, links = [], []
    walk(doc, text, links)
    return norm("".join(text)), set(links)


def norm(s):
    return re.sub(r"\s+", " ", s).strip()


def load(out):
    with open(out, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    res = {}
    for rec in data.split("\x1e"):
        if not rec:
            continue
        path, text, links = rec.split("\x1d")
        res[path] = (norm(text), set(filter(None, links.split("\x1f"))))
    return res


def words(s):
    return s.split(" ")


def similar(a, b):
    """Share of words in common (multiset), 1.0 when equal."""
    if a == b:
        return 1.0
    from collections import Counter
    ca, cb = Counter(words(a)), Counter(words(b))
    common = sum((ca & cb).values())
    return common / max(sum(ca.values()), sum(cb.values()), 1)


def main():
    files = [l.strip() for l in open(sys.argv[1]) if l.strip()]
    outs = {"libxml2": load(sys.argv[2]), "gumbo": load(sys.argv[3])}
    ref = {p: reference(p) for p in files}
    for group in ("real", "malformed"):
        sel = [p for p in files if ("/malformed/" in p) == (group == "malformed")]
        if not sel:
            continue
        for name, res in outs.items():
            texteq = linkeq = 0
            sim = 0.0
            for p in sel:
                t, l = res.get(p, ("", set()))
                rt, rl = ref[p]
                texteq += t == rt
                linkeq += l == rl
                sim += similar(t, rt)
                if "-v" in sys.argv and (t != rt or l != rl):
                    print("  differs:", name, p, file=sys.stderr)
            n = len(sel)
            print(f"| {group} ({n}) | {name} | {100*texteq/n:.1f}% | "
                  f"{100*sim/n:.2f}% | {100*linkeq/n:.1f}% |")


main()
