// bench/html_parse.sh's Node peer: cheerio (parse5), the same work as
// bench/html_parse.lua. Prints CPU ms, links and titles.
//   node html_cheerio.js LIST
const fs = require("fs");
const path = require("path");
const cheerio = require(path.join(__dirname, "html/node_modules/cheerio"));
const pages = fs.readFileSync(process.argv[2], "utf8").split("\n")
  .filter(Boolean).map((p) => fs.readFileSync(p));
let links = 0, titles = 0;
const t0 = process.cpuUsage();
for (const page of pages) {
  const $ = cheerio.load(page.toString("utf8"));
  const title = $("title");
  if (title.length) titles++;
  title.first().text();
  $("a[href]").each((i, a) => { if ($(a).attr("href") !== undefined) links++; });
}
const t = process.cpuUsage(t0);
console.log(`${((t.user + t.system) / 1000).toFixed(1)} ${links} ${titles}`);
