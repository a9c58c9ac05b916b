/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * html.c: `luaio.html`, HTML documents on libxml2's HTML parser.
 *
 * libxml2 was chosen by measurement (README, "Choosing the HTML
 * parser"): it agrees with html5lib on the text of every real page of
 * the corpus, parses twice as fast as gumbo, detects <meta charset>,
 * parses incrementally and has XPath. The document userdata owns the
 * libxml2 tree and frees it in its __gc (or __close); nodes (html_node.c)
 * hold their document, so no node outlives the tree. Parsing runs on the
 * calling task without waiting: it is CPU work like json.decode.
 */
#include "html.h"
#include <libxml/xpath.h>

#define PARSE_OPTS (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | \
  HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_NODEFDTD | \
  HTML_PARSE_COMPACT)
#define SEL_CACHE_MAX 256

static const char sel_cache_key = 0;   /* registry: css -> Selector */

typedef struct html_parser {
  htmlParserCtxtPtr ctxt;       /* from the first 4 bytes to the end */
  int done;                     /* finished (or collected) */
  int wide;                     /* UTF-16 or UCS-4: feed all at once */
  char *held;                   /* input not given to libxml2 yet */
  size_t nheld, cap;
  html_cut cut;                 /* where the held input may be cut */
} html_parser;

#define HOLD_MAX (64 * 1024)    /* past this, feed without a safe cut */

typedef struct html_selector {
  html_sel *sel;                /* NULL only while compiling */
} html_selector;

/* ---- options ------------------------------------------------------------ */

typedef struct parse_opts {
  const char *url, *encoding;
} parse_opts;

/* Read {url =, encoding =} at arg (optional). The strings found stay on
 * the stack (a table's __index could make them fresh). [-0, +(0..2)] */
static void check_opts (lua_State *L, int arg, const char *fname,
                        parse_opts *o) {
  static const char *const names[] = {"url", "encoding"};
  const char **dst[] = {&o->url, &o->encoding};
  int i;
  o->url = o->encoding = NULL;
  if (lua_isnoneornil(L, arg)) return;
  luaio__checktype(L, arg, fname, LUA_TTABLE);
  for (i = 0; i < 2; i++) {
    size_t len;
    if (lua_getfield(L, arg, names[i]) == LUA_TNIL) { lua_pop(L, 1); continue; }
    if (lua_type(L, -1) != LUA_TSTRING || strlen(*dst[i] = lua_tolstring(
        L, -1, &len)) != len) {
      lua_pushfstring(L, "option '%s' must be a string without NUL",
                      names[i]);
      luaio__argerror(L, arg, fname, lua_tostring(L, -1));
    }
  }
  if (o->encoding != NULL) {
    xmlCharEncodingHandlerPtr h = xmlFindCharEncodingHandler(o->encoding);
    if (h == NULL) {
      lua_pushfstring(L, "unknown encoding '%s'", o->encoding);
      luaio__argerror(L, arg, fname, lua_tostring(L, -1));
    }
    xmlCharEncCloseFunc(h);
  }
}

/* ---- documents ---------------------------------------------------------- */

html_doc *html__checkdoc (lua_State *L, int idx, const char *fname) {
  html_doc *d = luaL_testudata(L, idx, HTML_DOC);
  if (d == NULL) luaio__typeerror(L, idx, fname, "html document");
  if (d->doc == NULL) luaL_error(L, "%s: the document is closed", fname);
  return d;
}

/* A new document userdata, empty until the caller sets doc. [-0, +1] */
static html_doc *new_doc (lua_State *L) {
  html_doc *d = lua_newuserdatauv(L, sizeof *d, 1);
  d->doc = NULL;
  luaL_setmetatable(L, HTML_DOC);
  return d;
}

/* An empty tree for input libxml2 makes nothing of (""), so every
 * document has a tree; its URL is the one given, as given. */
static htmlDocPtr ensure_doc (htmlDocPtr doc, const char *url) {
  if (doc == NULL) doc = htmlNewDocNoDtD(NULL, NULL);
  if (doc != NULL) {
    xmlFree((xmlChar *)doc->URL);
    doc->URL = url ? xmlStrdup((const xmlChar *)url) : NULL;
  }
  return doc;
}

static int doc_close (lua_State *L) {
  html_doc *d = luaL_checkudata(L, 1, HTML_DOC);
  if (d->doc != NULL) xmlFreeDoc(d->doc);
  d->doc = NULL;
  return 0;
}

/* doc:close(): the method, whose errors name it. */
static int doc_close_method (lua_State *L) {
  if (luaL_testudata(L, 1, HTML_DOC) == NULL)
    luaio__typeerror(L, 1, "doc:close", "html document");
  return doc_close(L);
}

/* The first element named name in document order, or NULL. */
static xmlNode *find_first (htmlDocPtr doc, const char *name) {
  xmlNode *n = (xmlNode *)doc;
  while ((n = html__next_element(n, (xmlNode *)doc)) != NULL)
    if (strcmp((const char *)n->name, name) == 0) return n;
  return NULL;
}

/* doc.title (whitespace-normalised text of <title>, or nil), doc.url,
 * else the methods. */
static int doc_index (lua_State *L) {
  html_doc *d = luaL_checkudata(L, 1, HTML_DOC);
  const char *k = lua_tostring(L, 2);
  int field = k != NULL && (strcmp(k, "title") == 0 || strcmp(k, "url") == 0);
  if (field && d->doc == NULL)
    return luaL_error(L, "doc.%s: the document is closed", k);
  if (field && strcmp(k, "title") == 0) {
    xmlNode *t = find_first(d->doc, "title");
    if (t == NULL) lua_pushnil(L);
    else html__push_text(L, t, 1);
    return 1;
  }
  if (field) {                                    /* url */
    lua_pushstring(L, (const char *)d->doc->URL);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int doc_select (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:select");
  const html_sel *sel = html__checksel(L, 2, "doc:select");
  html__push_matches(L, 1, (xmlNode *)d->doc, sel, 0);
  return 1;
}

static int doc_select_one (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:select_one");
  const html_sel *sel = html__checksel(L, 2, "doc:select_one");
  html__push_matches(L, 1, (xmlNode *)d->doc, sel, 1);
  return 1;
}

static int doc_xpath (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:xpath");
  size_t len;
  const char *e = luaio__checkstring(L, 2, "doc:xpath", &len);
  if (strlen(e) != len)
    luaio__argerror(L, 2, "doc:xpath", "expression contains a NUL byte");
  return html__xpath(L, 1, (xmlNode *)d->doc, e, "doc:xpath");
}

/* doc:root() -> the <html> element (or the first element), or nil */
static int doc_root (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:root");
  xmlNode *r = xmlDocGetRootElement(d->doc);
  if (r == NULL) lua_pushnil(L);
  else html__push_node(L, 1, r);
  return 1;
}

static int doc_text (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:text");
  int norm = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "doc:text", LUA_TTABLE);
    norm = lua_getfield(L, 2, "normalize") != LUA_TNIL && lua_toboolean(L, -1);
  }
  html__push_text(L, (xmlNode *)d->doc, norm);
  return 1;
}

static int doc_html (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:html");
  html__push_html(L, (xmlNode *)d->doc);
  return 1;
}

/* ---- links -------------------------------------------------------------- */

/* The value of attribute name of n with ASCII whitespace trimmed, as
 * HTML does for URLs, pushed; 0 (nothing pushed) if absent. */
static int push_url_attr (lua_State *L, xmlNode *n, const char *name) {
  xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
  const char *s = (const char *)v, *e;
  if (v == NULL) return 0;
  s += strspn(s, " \t\n\r\f");
  for (e = s + strlen(s); e > s && strchr(" \t\n\r\f", e[-1]); e--) {}
  lua_pushlstring(L, s, (size_t)(e - s));
  xmlFree(v);
  return 1;
}

/* Resolve ref (top of stack) against base (may be NULL), drop its
 * fragment, and replace it with the result; returns 0 (and pops) if it
 * does not make a URL. [-1, +(0|1)] */
static int resolve (lua_State *L, const char *base) {
  const char *ref = lua_tostring(L, -1), *err = NULL;
  char *abs = base ? luaio__url_join(base, ref, &err) : NULL;
  const char *s = base ? abs : ref;
  size_t n;
  if (s == NULL) { lua_pop(L, 1); return 0; }
  n = strcspn(s, "#");
  if (n > 0) lua_pushlstring(L, s, n);
  free(abs);
  lua_remove(L, n > 0 ? -2 : -1);
  return n > 0;
}

/* The base of the document's links: <base href> (itself resolved
 * against the document's URL), or the URL, or nil. [-0, +1] */
static void push_base (lua_State *L, htmlDocPtr doc) {
  xmlNode *b = find_first(doc, "base");
  const char *url = (const char *)doc->URL;
  if (b != NULL && push_url_attr(L, b, "href")) {
    if (resolve(L, url)) return;
  }
  lua_pushstring(L, url);
}

/* doc:links() -> array of absolute URLs of a[href] and area[href], in
 * document order, without fragments and duplicates. */
static int doc_links (lua_State *L) {
  html_doc *d = html__checkdoc(L, 1, "doc:links");
  xmlNode *n = (xmlNode *)d->doc;
  lua_Integer i = 0;
  const char *base;
  lua_settop(L, 1);
  push_base(L, d->doc);                           /* 2: base */
  base = lua_tostring(L, 2);
  lua_newtable(L);                                /* 3: seen */
  lua_newtable(L);                                /* 4: result */
  while ((n = html__next_element(n, (xmlNode *)d->doc)) != NULL) {
    if (strcmp((const char *)n->name, "a") != 0 &&
        strcmp((const char *)n->name, "area") != 0) continue;
    if (!push_url_attr(L, n, "href") || !resolve(L, base)) continue;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 3) != LUA_TNIL) { lua_pop(L, 2); continue; }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, 3);
    lua_rawseti(L, 4, ++i);
  }
  return 1;
}

/* ---- the parser ----------------------------------------------------------
 * html.parse is html.parser fed once: libxml2's push parser builds the
 * same tree in one chunk as in many (its memory parser would not: it
 * stops at a NUL byte). The libxml2 context is made when the first 4
 * bytes are there, to read a byte order mark. */

#define PARSER "luaio.html.Parser"
enum { PV_URL = 1, PV_ENCODING, PV_N };          /* user values */

static html_parser *check_parser (lua_State *L, const char *fname) {
  html_parser *p = luaL_testudata(L, 1, PARSER);
  if (p == NULL) luaio__typeerror(L, 1, fname, "html parser");
  if (p->done) luaL_error(L, "%s: the parser is finished", fname);
  return p;
}

static int parser_close (lua_State *L) {
  html_parser *p = luaL_checkudata(L, 1, PARSER);
  if (p->ctxt != NULL) {
    if (p->ctxt->myDoc != NULL) xmlFreeDoc(p->ctxt->myDoc);
    htmlFreeParserCtxt(p->ctxt);
  }
  p->ctxt = NULL;
  p->done = 1;
  free(p->held);
  p->held = NULL;
  return 0;
}

/* A new parser for the options at arg. [-0, +1] */
static html_parser *new_parser (lua_State *L, int arg, const char *fname) {
  parse_opts o;
  html_parser *p;
  check_opts(L, arg, fname, &o);
  p = lua_newuserdatauv(L, sizeof *p, PV_N - 1);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PARSER);
  lua_pushstring(L, o.url);
  lua_setiuservalue(L, -2, PV_URL);
  lua_pushstring(L, o.encoding);
  lua_setiuservalue(L, -2, PV_ENCODING);
  return p;
}

/* The encoding to start with: a UTF-16 or UCS-4 byte order mark in the
 * first bytes s (n of them), else UTF-8 until a <meta charset> says
 * otherwise (with NONE, libxml2's push parser would take the first
 * non-ASCII byte for Latin-1). */
static xmlCharEncoding first_encoding (const char *s, size_t n) {
  xmlCharEncoding e = n >= 4 ? xmlDetectCharEncoding((const xmlChar *)s, 4)
                             : XML_CHAR_ENCODING_NONE;
  return e == XML_CHAR_ENCODING_UTF16LE || e == XML_CHAR_ENCODING_UTF16BE ||
         e == XML_CHAR_ENCODING_UCS4LE || e == XML_CHAR_ENCODING_UCS4BE ?
         e : XML_CHAR_ENCODING_UTF8;
}

/* Length of the byte order mark s (n bytes) starts with, or 0. libxml2's
 * push parser, told the encoding, would keep it as a U+FEFF text. */
static size_t bom_len (const char *s, size_t n) {
  static const char *const boms[] = {"\xEF\xBB\xBF", "\xFF\xFE\0\0",
                                     "\0\0\xFE\xFF", "\xFF\xFE", "\xFE\xFF"};
  static const size_t lens[] = {3, 4, 4, 2, 2};
  size_t i;
  for (i = 0; i < sizeof lens / sizeof *lens; i++)
    if (n >= lens[i] && memcmp(s, boms[i], lens[i]) == 0) return lens[i];
  return 0;
}

/* Make the libxml2 context of the parser at idx, its input starting with
 * s (n bytes). Returns how many bytes of s to skip (a byte order mark). */
static size_t start (lua_State *L, html_parser *p, int idx, const char *s,
                     size_t n) {
  const char *url, *enc;
  xmlCharEncoding e;
  html_quiet q;
  lua_getiuservalue(L, idx, PV_URL);
  lua_getiuservalue(L, idx, PV_ENCODING);
  url = lua_tostring(L, -2);
  enc = lua_tostring(L, -1);
  e = enc ? XML_CHAR_ENCODING_UTF8 : first_encoding(s, n);
  html__quiet(&q);
  p->ctxt = htmlCreatePushParserCtxt(NULL, NULL, NULL, 0, url, e);
  if (p->ctxt != NULL) {
    htmlCtxtUseOptions(p->ctxt, PARSE_OPTS);
    if (enc != NULL)     /* checked by check_opts; wins over <meta> */
      xmlSwitchToEncoding(p->ctxt, xmlFindCharEncodingHandler(enc));
  }
  html__loud(&q);
  lua_pop(L, 2);
  if (p->ctxt == NULL) luaL_error(L, "html: out of memory");
  /* Cutting after '>' would split UTF-16 and UCS-4 characters. */
  p->wide = e != XML_CHAR_ENCODING_UTF8 || (enc && (strstr(enc, "16") ||
            strstr(enc, "32") || strstr(enc, "UCS") || strstr(enc, "ucs")));
  return enc ? 0 : bom_len(s, n);
}

/* libxml2 takes an int length. The end comes as a chunk of its own:
 * libxml2 2.9 reads the same bytes differently when they come with the
 * end ("</\n<? >" is a paragraph without it, nothing with it), and
 * html.parse and the last feed of html.parser must agree. Quiet: a
 * conversion error (bytes that are not in the page's charset) is
 * printed, not returned. */
static void feed (html_parser *p, const char *s, size_t len, int end) {
  html_quiet q;
  html__quiet(&q);
  while (len > 0) {
    int n = len > (1u << 30) ? 1 << 30 : (int)len;
    htmlParseChunk(p->ctxt, s, n, 0);
    s += n;
    len -= (size_t)n;
  }
  if (end) htmlParseChunk(p->ctxt, NULL, 0, 1);
  html__loud(&q);
}

/* Append s to the held input. */
static void hold (lua_State *L, html_parser *p, const char *s, size_t len) {
  if (p->nheld + len > p->cap) {
    size_t cap = (p->nheld + len) * 2;
    char *h = realloc(p->held, cap);
    if (h == NULL) luaL_error(L, "parser:feed: out of memory");
    p->held = h;
    p->cap = cap;
  }
  memcpy(p->held + p->nheld, s, len);
  p->nheld += len;
}

/* parser:feed(chunk) -> parser. libxml2 2.9's push parser builds
 * another tree when a chunk ends inside a script, a style or a comment
 * (html_cut.c), so input is handed over only up to the last '>' outside
 * them, the rest held for the next feed. */
static int parser_feed (lua_State *L) {
  html_parser *p = check_parser(L, "parser:feed");
  size_t len, cut;
  const char *s = luaio__checkstring(L, 2, "parser:feed", &len);
  lua_settop(L, 2);
  hold(L, p, s, len);
  if (p->ctxt == NULL && p->nheld < 4) return lua_settop(L, 1), 1;
  if (p->ctxt == NULL) {
    size_t skip = start(L, p, 1, p->held, p->nheld);
    memmove(p->held, p->held + skip, p->nheld - skip);
    p->nheld -= skip;
  }
  cut = p->wide ? p->nheld : html__cut_scan(&p->cut, p->held, p->nheld);
  if (cut == 0 && p->nheld > HOLD_MAX) cut = p->nheld;
  if (cut > 0) {
    feed(p, p->held, cut, 0);
    html__cut_fed(&p->cut, cut);
    memmove(p->held, p->held + cut, p->nheld - cut);
    p->nheld -= cut;
  }
  lua_settop(L, 1);
  return 1;
}

/* Parse the last input s (len bytes) of the parser at idx and push its
 * document; the parser is done. [-0, +1] */
static void finish (lua_State *L, html_parser *p, int idx, const char *s,
                    size_t len) {
  html_doc *d;
  idx = lua_absindex(L, idx);
  d = new_doc(L);
  if (p->ctxt == NULL) {
    size_t skip = start(L, p, idx, s, len);
    if (skip > 0) s += skip, len -= skip;
  }
  feed(p, s, len, 1);
  lua_getiuservalue(L, idx, PV_URL);
  d->doc = ensure_doc(p->ctxt->myDoc, lua_tostring(L, -1));
  lua_pop(L, 1);
  p->ctxt->myDoc = NULL;
  htmlFreeParserCtxt(p->ctxt);
  p->ctxt = NULL;
  p->done = 1;
  if (d->doc == NULL) luaL_error(L, "html: out of memory");
}

/* html.parser([opts]) -> Parser */
static int html_parser_new (lua_State *L) {
  new_parser(L, 1, "html.parser");
  return 1;
}

/* parser:finish() -> Document */
static int parser_finish (lua_State *L) {
  html_parser *p = check_parser(L, "parser:finish");
  lua_settop(L, 1);
  finish(L, p, 1, p->held, p->nheld);
  return 1;
}

/* html.parse(text [, opts]) -> Document */
static int html_parse (lua_State *L) {
  size_t len;
  const char *s = luaio__checkstring(L, 1, "html.parse", &len);
  html_parser *p = new_parser(L, 2, "html.parse");
  finish(L, p, -1, s, len);
  return 1;
}

/* ---- compiled selectors ------------------------------------------------- */

static int selector_gc (lua_State *L) {
  html_selector *s = luaL_checkudata(L, 1, HTML_SELECTOR);
  html__sel_free(s->sel);
  s->sel = NULL;
  return 0;
}

/* Compile the string at arg into a new Selector. [-0, +1] */
static html_selector *compile (lua_State *L, int arg, const char *fname) {
  size_t len;
  const char *css = luaio__checkstring(L, arg, fname, &len);
  html_selector *s;
  char err[160];
  if (strlen(css) != len) {
    lua_pushfstring(L, "selector contains a NUL byte at position %d",
                    (int)strlen(css) + 1);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
  s = lua_newuserdatauv(L, sizeof *s, 0);
  s->sel = NULL;
  luaL_setmetatable(L, HTML_SELECTOR);
  if ((s->sel = html__sel_compile(css, len, err, sizeof err)) == NULL) {
    lua_pushfstring(L, "invalid selector '%s': %s", css, err);
    luaio__argerror(L, arg, fname, lua_tostring(L, -1));
  }
  return s;
}

static int html_selector_new (lua_State *L) {
  compile(L, 1, "html.selector");
  return 1;
}

/* A string is compiled once: the cache keeps up to SEL_CACHE_MAX
 * selectors and starts over when full. */
const html_sel *html__checksel (lua_State *L, int arg, const char *fname) {
  html_selector *s = luaL_testudata(L, arg, HTML_SELECTOR);
  lua_Integer n;
  int cache;
  if (s != NULL) return s->sel;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaio__typeerror(L, arg, fname, "string or html selector");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sel_cache_key);
  cache = lua_gettop(L);
  lua_pushvalue(L, arg);
  if (lua_rawget(L, cache) == LUA_TUSERDATA) {
    s = lua_touserdata(L, -1);
    lua_replace(L, arg);           /* keep it alive while in use */
    lua_pop(L, 1);
    return s->sel;
  }
  lua_pop(L, 1);
  s = compile(L, arg, fname);
  lua_rawgeti(L, cache, 0);                       /* [0]: the count */
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (n >= SEL_CACHE_MAX) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sel_cache_key);
  }
  else {
    lua_pushvalue(L, arg);
    lua_pushvalue(L, -2);
    lua_rawset(L, cache);
    lua_pushinteger(L, n + 1);
    lua_rawseti(L, cache, 0);
  }
  lua_replace(L, arg);
  lua_pop(L, 1);
  return s->sel;
}

/* ---- the module --------------------------------------------------------- */

static const luaL_Reg doc_methods[] = {
  {"select", doc_select}, {"select_one", doc_select_one},
  {"xpath", doc_xpath}, {"links", doc_links}, {"root", doc_root},
  {"text", doc_text}, {"html", doc_html}, {"close", doc_close_method},
  {NULL, NULL}
};

static void register_doc (lua_State *L) {
  if (luaL_newmetatable(L, HTML_DOC)) {
    lua_newtable(L);
    luaL_setfuncs(L, doc_methods, 0);
    lua_pushcclosure(L, doc_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, doc_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, doc_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
}

int luaopen_luaio_html (lua_State *L) {
  static const luaL_Reg parser_methods[] = {
    {"feed", parser_feed}, {"finish", parser_finish}, {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"parse", html_parse}, {"parser", html_parser_new},
    {"selector", html_selector_new}, {NULL, NULL}
  };
  xmlInitParser();
  register_doc(L);
  html__node_register(L);
  luaio__class(L, PARSER, parser_methods, parser_close, NULL);
  luaio__class(L, HTML_SELECTOR, NULL, selector_gc, NULL);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sel_cache_key);
  luaL_newlib(L, funcs);
  return 1;
}
