// SPDX-License-Identifier: MIT (see LICENSE)
// The crawl benchmark's Crawlee peer (CheerioCrawler): same extraction
// as examples/crawl.lua (title, absolute same-host links, one JSON line
// per URL) with CONC requests at once.
//   node crawlee_crawler.mjs START_URL OUT_JSONL CONC
import { CheerioCrawler, Configuration } from '@crawlee/cheerio';
import fs from 'node:fs';

const [start, out, conc] = [process.argv[2], process.argv[3], +process.argv[4]];
const host = new URL(start).host;
const records = fs.createWriteStream(out);
const t0 = process.hrtime.bigint();
let pages = 0;
const crawler = new CheerioCrawler({
  maxConcurrency: conc, minConcurrency: conc, maxRequestRetries: 0,
  maxRequestsPerCrawl: 1e9, respectRobotsTxtFile: true,
  async requestHandler({ request, $, body, enqueueLinks }) {
    let links = 0;
    $('a[href]').each((_, a) => {
      try {
        const u = new URL($(a).attr('href'), request.loadedUrl);
        if (u.host === host && u.protocol.startsWith('http')) links++;
      } catch {}
    });
    await enqueueLinks({ strategy: 'same-hostname' });
    records.write(JSON.stringify({ url: request.loadedUrl, status: 200,
      title: $('title').text(), bytes: body.length, links }) + '\n');
    pages++;
  },
}, new Configuration({ persistStorage: false, purgeOnStart: true,
                       systemInfoV2: false }));
await crawler.run([start]);
records.end();
const dt = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`CRAWL crawlee ${(pages / dt).toFixed(1)} pages/s pages=${pages} wall_s=${dt.toFixed(3)}`);
