# bench/html_parse.sh's Python peers: parse every page of the corpus,
# extract the title and the href of every a[href]. Prints the CPU
# milliseconds of that loop, the links and the titles found.
#   html_py.py LIST lxml|bs4|bs4-lxml
import sys
import time

mode = sys.argv[2]
pages = []
for path in open(sys.argv[1]):
    with open(path.strip(), "rb") as f:
        pages.append(f.read())

if mode == "lxml":
    import lxml.html
    from lxml.cssselect import CSSSelector
    sel = CSSSelector("a[href]")

    def one(page):
        doc = lxml.html.document_fromstring(page)
        title = doc.findtext(".//title")
        return [a.get("href") for a in sel(doc)], title
else:
    from bs4 import BeautifulSoup
    parser = "html.parser" if mode == "bs4" else "lxml"

    def one(page):
        soup = BeautifulSoup(page, parser)
        title = soup.title.get_text() if soup.title else None
        return [a["href"] for a in soup.select("a[href]")], title

links = titles = 0
t0 = time.process_time()
for page in pages:
    hrefs, title = one(page)
    links += len(hrefs)
    titles += title is not None
print("%.1f %d %d" % ((time.process_time() - t0) * 1000, links, titles))
