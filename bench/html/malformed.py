# SPDX-License-Identifier: MIT (see LICENSE)
"""Writes N malformed HTML pages (seeded, so the same every run) into a
folder for bench/html_corpus.sh: each mixes fragments with the classic
faults of real pages.

  malformed.py folder [N]
"""
import os
import random
import sys

FRAGMENTS = [
    "<p>unclosed paragraph <p>another one <a href='/u1'>link one",
    "<p>text</p></p> stray close </p> after",
    "<p>para <table><tr><td>cell <a href=cell.html>in table</a></table> end",
    "<script>var s = '</div>'; if (a </b) x = '<a href=\"no\">';</script>",
    "<script>document.write('<p>')</script><p>after script",
    "<b>bold <i>both</b> italic</i> plain",
    "<a href=/outer>outer <a href=/inner>inner</a> tail</a>",
    "<ul><li>one<li>two <a href='li.html'>x</a><li>three</ul>",
    "<div><span>unclosed span <div>nested div</span></div>",
    "<table><tr><td>a<td>b<tr><td>c</table>",
    "<table>stray text in table <a href='/foster'>foster</a><tr><td>x</td></tr></table>",
    "&amp; &lt;tag&gt; &copy 2024 &notanentity; &#x41;&#66; &nbsp;end",
    "<p title=unquoted class=a>attrs <a href=/q?a=1&b=2>amp in href</a>",
    "<!-- comment <a href='/hidden'>hidden</a> -->visible",
    "<h1>title<h2>subtitle</h1> mixed</h2>",
    "<form><input name=q><select><option>o1<option>o2</select></form>",
    "<p>before <div>block in p</div> after</p>",
    "<li>orphan item <a href='orphan.html'>o</a>",
    "<textarea><a href='/nope'>not a link</a></textarea>",
    "<title>inner title</title><p>title in body",
    "<style>p { content: '</p>' }</style><p>styled",
    "<A HREF='/UPPER'>Upper Case</A> <IMG SRC=x.png ALT=img>",
    "<p>unterminated <a href='/open",
    "<br/><hr/><p/>self-closing <div/>div text",
    "<noscript><a href='/ns'>noscript link</a></noscript>",
    "<svg><a href='/svg'>svg text</a></svg> after svg",
    "<select><a href='/insel'>in select</a></select>",
    "<pre>\n pre text <a href=pre.html>p</a></pre>",
    "<frameset><frame src=x></frameset> body after frameset",
]

ENCODED = [
    ("<meta charset='iso-8859-1'>", "caf\xe9 na\xefve \xa9", "latin-1"),
    ("<meta http-equiv='Content-Type' content='text/html; charset=windows-1252'>",
     "quotes \u201cdouble\u201d \u2013 dash \u20ac", "cp1252"),
    ("<meta charset=utf-8>", "caf\xe9 \u65e5\u672c \u2603", "utf-8"),
    ("", "plain ascii only", "ascii"),
]


def page(rng, i):
    head = ""
    body = " ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(3, 9)))
    enc = "utf-8"
    if rng.random() < 0.4:
        meta, text, enc = rng.choice(ENCODED)
        head = meta
        body += " <p>" + text + "</p>"
    parts = []
    if rng.random() < 0.7:
        parts.append("<!DOCTYPE html>")
    if rng.random() < 0.6:
        parts.append("<html><head>" + head + f"<title>page {i}</title></head>")
        parts.append("<body>" + body)
        if rng.random() < 0.5:
            parts.append("</body></html>")
    else:
        parts.append(head + f"<title>page {i}</title>" + body)
    data = "\n".join(parts).encode(enc, "replace")
    if rng.random() < 0.15:                  # broken bytes
        pos = rng.randrange(len(data))
        data = data[:pos] + rng.choice([b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\x80"]) + data[pos:]
    return data


def main():
    out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    os.makedirs(out, exist_ok=True)
    rng = random.Random(16)
    for i in range(n):
        with open(os.path.join(out, f"m{i:03d}.html"), "wb") as f:
            f.write(page(rng, i))


main()
