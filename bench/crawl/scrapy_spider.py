# SPDX-License-Identifier: MIT (see LICENSE)
# The crawl benchmark's Scrapy peer: same extraction as examples/crawl.lua
# (title, absolute same-host links, one JSON line per URL), same
# politeness (robots.txt obeyed, CONC requests at once, no delay).
#   python3 scrapy_spider.py START_URL OUT_JSONL CONC
import json, sys, time
from urllib.parse import urlsplit, urldefrag
import scrapy
from scrapy.crawler import CrawlerProcess

START, OUT, CONC = sys.argv[1], sys.argv[2], int(sys.argv[3])
HOST = urlsplit(START).netloc

class Site(scrapy.Spider):
    name = "site"
    start_urls = [START]

    def parse(self, response):
        links = 0
        for href in response.css("a::attr(href)").getall():
            url = urldefrag(response.urljoin(href))[0]
            if url.startswith("http") and urlsplit(url).netloc == HOST:
                links += 1
                yield response.follow(url, callback=self.parse)
        yield {"url": response.url, "status": response.status,
               "title": response.css("title::text").get(),
               "bytes": len(response.body), "links": links}

t0 = time.monotonic()
process = CrawlerProcess(settings={
    "LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": True, "CONCURRENT_REQUESTS": CONC,
    "CONCURRENT_REQUESTS_PER_DOMAIN": CONC, "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False, "TELNETCONSOLE_ENABLED": False,
    "DEPTH_LIMIT": 0, "USER_AGENT": "scrapy-bench",
    "FEEDS": {OUT: {"format": "jsonlines", "overwrite": True}},
})
process.crawl(Site)
process.start()
dt = time.monotonic() - t0
pages = sum(1 for _ in open(OUT))
print(f"CRAWL scrapy {pages / dt:.1f} pages/s pages={pages} wall_s={dt:.3f}")
