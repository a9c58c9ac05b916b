/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * html.h: what the files of `luaio.html` share (html.c: documents and the
 * parser; html_node.c: nodes; html_select.c: the CSS selector compiler
 * and matcher, plain C without Lua).
 */
#ifndef LUAIO_HTML_H
#define LUAIO_HTML_H

#include "../host/host.h"
#include "../host/url.h"
#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#define HTML_DOC "luaio.html.Document"
#define HTML_NODE "luaio.html.Node"
#define HTML_SELECTOR "luaio.html.Selector"

/* ---- html_select.c ------------------------------------------------------ */
typedef struct html_sel html_sel;

/* Compile the selector css (len bytes). Returns the program (free it with
 * html__sel_free), or NULL with a message naming the 1-based position in
 * err. Never calls Lua. */
html_sel *html__sel_compile(const char *css, size_t len, char *err,
                            size_t errsize);
void html__sel_free(html_sel *s);
/* Does the element el match? */
int html__sel_match(const html_sel *s, xmlNode *el);

/* The next element after n in document order inside root's subtree
 * (root itself excluded), or NULL: the walk of select(). */
xmlNode *html__next_element(xmlNode *n, xmlNode *root);

/* ---- libxml2's error output ---------------------------------------------
 * libxml2 prints some errors (input conversion, XPath functions) to
 * stderr whatever the parse options say. A binding never prints: these
 * calls are wrapped in quiet/loud, which silence libxml2's generic error
 * handler and put back the one that was set (the embedder's, say). */
typedef struct html_quiet {
  xmlGenericErrorFunc fn;
  void *ctx;
} html_quiet;
void html__quiet(html_quiet *q);
void html__loud(const html_quiet *q);

/* ---- html_cut.c --------------------------------------------------------- */
/* Where html.parser may end a chunk for libxml2 (see html_cut.c): the
 * scanner's state over the input held back, kept across feeds. */
typedef struct html_cut {
  int open;                     /* comment, script, style: not ended */
  int in_tag;                   /* in the start tag of a script, style */
  size_t pos;                   /* scanned up to here */
  size_t safe;                  /* the last place a chunk may end */
} html_cut;
/* Scan the held input s (n bytes, the same bytes as before and more)
 * on from where the last scan stopped; returns how many bytes of it may
 * be fed now (0: none). */
size_t html__cut_scan(html_cut *c, const char *s, size_t n);
/* The first fed bytes of the held input went to libxml2. */
void html__cut_fed(html_cut *c, size_t fed);

/* ---- html.c ------------------------------------------------------------- */
typedef struct html_doc {
  htmlDocPtr doc;               /* NULL once collected */
} html_doc;

/* The document userdata at idx. */
html_doc *html__checkdoc(lua_State *L, int idx, const char *fname);
/* The compiled selector of argument arg: a Selector, or a string compiled
 * once and cached. */
const html_sel *html__checksel(lua_State *L, int arg, const char *fname);

/* ---- html_node.c -------------------------------------------------------- */
/* Push the Node for n of the document userdata at docidx (the same
 * userdata each time while it lives, so nodes compare with ==). The node
 * holds its document. [-0, +1] */
void html__push_node(lua_State *L, int docidx, xmlNode *n);
/* Push an array of the elements under root matching sel. [-0, +1] */
void html__push_matches(lua_State *L, int docidx, xmlNode *root,
                        const html_sel *sel, int first_only);
/* Push the text of n (all text below it), whitespace collapsed if
 * normalize. [-0, +1] */
void html__push_text(lua_State *L, xmlNode *n, int normalize);
/* Push the HTML of n (outer; a document: all of it), UTF-8. [-0, +1] */
void html__push_html(lua_State *L, xmlNode *n);
/* Results of an XPath expression evaluated at n. [-0, +1] */
int html__xpath(lua_State *L, int docidx, xmlNode *n, const char *expr,
                const char *fname);
void html__node_register(lua_State *L);

#endif
