/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * html_node.c: the nodes of `luaio.html` documents.
 *
 * A node userdata holds a pointer into the document's tree and, as its
 * user value, the document userdata: while a node is reachable its
 * document is too, so the tree (freed only by the document's __gc or
 * close) outlives it. Every method checks the document is still open, so
 * a node kept past doc:close() (or resurrected by a finalizer) raises
 * instead of reading freed memory. Each document caches its node
 * userdata (weak values), so the same element is the same Lua value.
 */
#include "html.h"
#include <libxml/xpath.h>

typedef struct html_node {
  xmlNode *n;
} html_node;

/* The node at idx, its document pushed on top. [-0, +1] */
static xmlNode *check_node (lua_State *L, int idx, const char *fname) {
  html_node *h = luaL_testudata(L, idx, HTML_NODE);
  html_doc *d;
  if (h == NULL) luaio__typeerror(L, idx, fname, "html node");
  lua_getiuservalue(L, idx, 1);
  d = lua_touserdata(L, -1);
  if (d == NULL || d->doc == NULL)
    luaL_error(L, "%s: the node's document is closed", fname);
  return h->n;
}

void html__push_node (lua_State *L, int docidx, xmlNode *n) {
  html_node *h;
  docidx = lua_absindex(L, docidx);
  luaL_checkstack(L, 4, "html: too many nodes");
  if (lua_getiuservalue(L, docidx, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);                              /* the node cache */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, docidx, 1);
  }
  if (lua_rawgetp(L, -1, n) == LUA_TUSERDATA) {   /* cache, node */
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  h = lua_newuserdatauv(L, sizeof *h, 1);         /* cache, node */
  h->n = n;
  luaL_setmetatable(L, HTML_NODE);
  lua_pushvalue(L, docidx);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, n);
  lua_remove(L, -2);
}

void html__push_matches (lua_State *L, int docidx, xmlNode *root,
                         const html_sel *sel, int first_only) {
  xmlNode *n = root;
  lua_Integer i = 0;
  docidx = lua_absindex(L, docidx);
  if (!first_only) lua_newtable(L);
  while ((n = html__next_element(n, root)) != NULL) {
    if (!html__sel_match(sel, n)) continue;
    html__push_node(L, docidx, n);
    if (first_only) return;
    lua_rawseti(L, -2, ++i);
  }
  if (first_only) lua_pushnil(L);
}

/* Append the text below n in document order to b; ws: 1 while the last
 * byte written was a space (or nothing yet), -1 to keep whitespace. */
static void add_text (luaL_Buffer *b, xmlNode *root, int *ws) {
  xmlNode *n = root;
  while (n != NULL) {
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      const char *s = (const char *)n->content;
      if (*ws < 0) luaL_addstring(b, s);
      else for (; *s; s++) {
        int sp = strchr(" \t\n\r\f", *s) != NULL;
        if (!sp) luaL_addchar(b, *s);
        else if (!*ws) luaL_addchar(b, ' ');
        *ws = sp;
      }
    }
    if (n->children != NULL && n->type != XML_ENTITY_REF_NODE &&
        (n == root || n->type == XML_ELEMENT_NODE))
      n = n->children;
    else {
      while (n != root && n->next == NULL) n = n->parent;
      n = n == root ? NULL : n->next;
    }
  }
}

void html__push_text (lua_State *L, xmlNode *n, int normalize) {
  luaL_Buffer b;
  int ws = normalize ? 1 : -1;
  luaL_buffinit(L, &b);
  add_text(&b, n, &ws);
  if (normalize && ws == 1 && luaL_bufflen(&b) > 0)
    luaL_buffsub(&b, 1);                          /* the trailing space */
  luaL_pushresult(&b);
}

/* ---- methods ------------------------------------------------------------ */

/* node.tag (lowercase name) or a method. */
static int node_index (lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k != NULL && strcmp(k, "tag") == 0) {
    xmlNode *n = check_node(L, 1, "node.tag");
    lua_pushstring(L, (const char *)n->name);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static const char *check_name (lua_State *L, int arg, const char *fname) {
  size_t len;
  const char *s = luaio__checkstring(L, arg, fname, &len);
  if (strlen(s) != len) luaio__argerror(L, arg, fname, "name contains NUL");
  return s;
}

/* Push the value of attribute a: its text child as it is when it has
 * one (the usual case), else the value libxml2 assembles. [-0, +1] */
static void push_attr_value (lua_State *L, xmlAttr *a) {
  xmlChar *v;
  if (a->children != NULL && a->children->next == NULL &&
      a->children->type == XML_TEXT_NODE) {
    lua_pushstring(L, (const char *)a->children->content);
    return;
  }
  v = xmlNodeGetContent((xmlNode *)a);
  lua_pushstring(L, v ? (const char *)v : "");  /* no error before free */
  xmlFree(v);
}

/* node:attr(name) -> value or nil */
static int node_attr (lua_State *L) {
  xmlNode *n;
  const char *name;
  xmlAttr *a;
  lua_settop(L, 2);                 /* the document goes to 3 */
  n = check_node(L, 1, "node:attr");
  name = check_name(L, 2, "node:attr");
  for (a = n->properties; a != NULL; a = a->next)
    if (strcmp((const char *)a->name, name) == 0) {
      push_attr_value(L, a);
      return 1;
    }
  lua_pushnil(L);
  return 1;
}

/* node:attrs() -> {name = value} */
static int node_attrs (lua_State *L) {
  lua_settop(L, 1);
  xmlNode *n = check_node(L, 1, "node:attrs");
  xmlAttr *a;
  lua_newtable(L);
  for (a = n->properties; a != NULL; a = a->next) {
    push_attr_value(L, a);
    lua_setfield(L, -2, (const char *)a->name);
  }
  return 1;
}

/* node:text([{normalize = true}]) */
static int node_text (lua_State *L) {
  lua_settop(L, 2);                 /* the document goes to 3 */
  xmlNode *n = check_node(L, 1, "node:text");
  int norm = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaio__checktype(L, 2, "node:text", LUA_TTABLE);
    norm = lua_getfield(L, 2, "normalize") != LUA_TNIL && lua_toboolean(L, -1);
  }
  html__push_text(L, n, norm);
  return 1;
}

void html__push_html (lua_State *L, xmlNode *n) {
  xmlBufferPtr buf = xmlBufferCreate();
  xmlOutputBufferPtr out = buf ? xmlOutputBufferCreateBuffer(buf, NULL) : NULL;
  if (out != NULL) {
    if (n->type == XML_HTML_DOCUMENT_NODE)
      htmlDocContentDumpFormatOutput(out, (xmlDocPtr)n, NULL, 0);
    else htmlNodeDumpFormatOutput(out, n->doc, n, NULL, 0);
    xmlOutputBufferClose(out);
  }
  if (out == NULL || xmlBufferContent(buf) == NULL) {
    xmlBufferFree(buf);
    luaL_error(L, "html: out of memory");
  }
  lua_pushlstring(L, (const char *)xmlBufferContent(buf),
                  (size_t)xmlBufferLength(buf));
  xmlBufferFree(buf);
}

/* node:html() -> the outer HTML */
static int node_html (lua_State *L) {
  html__push_html(L, check_node(L, 1, "node:html"));
  return 1;
}

/* node:children() -> array of the child elements */
static int node_children (lua_State *L) {
  xmlNode *n = check_node(L, 1, "node:children"), *c;
  int doc = lua_gettop(L);
  lua_Integer i = 0;
  lua_newtable(L);
  for (c = n->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    html__push_node(L, doc, c);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* node:parent() -> the parent element, or nil at the root */
static int node_parent (lua_State *L) {
  xmlNode *n = check_node(L, 1, "node:parent");
  if (n->parent == NULL || n->parent->type != XML_ELEMENT_NODE)
    lua_pushnil(L);
  else html__push_node(L, -1, n->parent);
  return 1;
}

/* node:select(css) and node:select_one(css): one with first_only. */
static int select_matches (lua_State *L, const char *fname, int first_only) {
  lua_settop(L, 2);                 /* the document goes to 3 */
  xmlNode *n = check_node(L, 1, fname);
  const html_sel *sel = html__checksel(L, 2, fname);
  html__push_matches(L, 3, n, sel, first_only);
  return 1;
}

static int node_select (lua_State *L) {
  return select_matches(L, "node:select", 0);
}

static int node_select_one (lua_State *L) {
  return select_matches(L, "node:select_one", 1);
}

static int node_xpath (lua_State *L) {
  lua_settop(L, 2);                 /* the document goes to 3 */
  xmlNode *n = check_node(L, 1, "node:xpath");
  size_t len;
  const char *e = luaio__checkstring(L, 2, "node:xpath", &len);
  if (strlen(e) != len)
    luaio__argerror(L, 2, "node:xpath", "expression contains a NUL byte");
  return html__xpath(L, 3, n, e, "node:xpath");
}

static int node_tostring (lua_State *L) {
  html_node *h = luaL_checkudata(L, 1, HTML_NODE);
  lua_getiuservalue(L, 1, 1);
  if (((html_doc *)lua_touserdata(L, -1))->doc == NULL)
    lua_pushliteral(L, "luaio.html.Node (closed)");
  else lua_pushfstring(L, "luaio.html.Node <%s>", (const char *)h->n->name);
  return 1;
}

/* ---- XPath -------------------------------------------------------------- */

/* libxml2 objects of one evaluation, freed by __gc if a Lua error (out
 * of memory) interrupts the conversion. */
typedef struct xpath_run {
  xmlXPathContextPtr ctx;
  xmlXPathObjectPtr obj;
} xpath_run;

static int xpath_gc (lua_State *L) {
  xpath_run *r = lua_touserdata(L, 1);
  if (r->obj) xmlXPathFreeObject(r->obj);
  if (r->ctx) xmlXPathFreeContext(r->ctx);
  r->obj = NULL;
  r->ctx = NULL;
  return 0;
}

static void xpath_silent (void *ud, xmlErrorPtr e) { (void)ud; (void)e; }

static void generic_silent (void *ud, const char *fmt, ...) {
  (void)ud;
  (void)fmt;
}

void html__quiet (html_quiet *q) {
  q->fn = xmlGenericError;
  q->ctx = xmlGenericErrorContext;
  xmlSetGenericErrorFunc(NULL, generic_silent);
}

void html__loud (const html_quiet *q) {
  xmlSetGenericErrorFunc(q->ctx, q->fn);
}

/* libxml2 fills in no message when the context has an error callback,
 * only the code (xmlerror.h, XML_XPATH_EXPRESSION_OK = 1200 on). */
static const char *xpath_message (int code) {
  static const char *const msg[] = {
    "ok", "number error", "unfinished literal", "literal expected",
    "variable reference expected", "undefined variable",
    "invalid predicate", "invalid expression", "missing closing bracket",
    "unknown function", "invalid operand", "invalid type",
    "wrong number of arguments", "invalid context size",
    "invalid context position", "out of memory", "syntax error",
    "resource error", "sub-resource error", "undefined namespace prefix",
    "encoding error", "invalid character"
  };
  code -= XML_XPATH_EXPRESSION_OK;
  return code >= 0 && code < (int)(sizeof msg / sizeof *msg) ? msg[code]
                                                            : "error";
}

/* Evaluate quietly: unknown functions are reported on stderr. */
static xmlXPathObjectPtr xpath_eval (const char *expr, xmlXPathContextPtr c) {
  html_quiet q;
  xmlXPathObjectPtr o;
  html__quiet(&q);
  o = xmlXPathEvalExpression((const xmlChar *)expr, c);
  html__loud(&q);
  return o;
}

/* Push one node of a node set: elements as nodes, the document as
 * itself, other nodes (attributes, text) as their text. [-0, +1] */
static void push_xnode (lua_State *L, int docidx, xmlNode *n) {
  if (n->type == XML_ELEMENT_NODE) html__push_node(L, docidx, n);
  else if (n->type == XML_HTML_DOCUMENT_NODE) lua_pushvalue(L, docidx);
  else {
    xmlChar *v = xmlNodeGetContent(n);
    lua_pushstring(L, v ? (const char *)v : "");
    xmlFree(v);
  }
}

static void push_xresult (lua_State *L, int docidx, xmlXPathObjectPtr o) {
  int i;
  switch (o->type) {
  case XPATH_NODESET:
    lua_createtable(L, o->nodesetval ? o->nodesetval->nodeNr : 0, 0);
    for (i = 0; o->nodesetval && i < o->nodesetval->nodeNr; i++) {
      push_xnode(L, docidx, o->nodesetval->nodeTab[i]);
      lua_rawseti(L, -2, i + 1);
    }
    break;
  case XPATH_BOOLEAN: lua_pushboolean(L, o->boolval); break;
  case XPATH_NUMBER: {           /* count() is 3, not 3.0; NaN stays */
    lua_Integer i;
    if (lua_numbertointeger(o->floatval, &i) && (lua_Number)i == o->floatval)
      lua_pushinteger(L, i);
    else lua_pushnumber(L, o->floatval);
    break;
  }
  case XPATH_STRING: lua_pushstring(L, (const char *)o->stringval); break;
  default: lua_pushnil(L);
  }
}

int html__xpath (lua_State *L, int docidx, xmlNode *n, const char *expr,
                 const char *fname) {
  xpath_run *r;
  docidx = lua_absindex(L, docidx);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  r->ctx = NULL;
  r->obj = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, xpath_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if ((r->ctx = xmlXPathNewContext(n->doc)) == NULL)
    return luaL_error(L, "%s: out of memory", fname);
  r->ctx->node = n;
  r->ctx->error = xpath_silent;
  r->obj = xpath_eval(expr, r->ctx);
  if (r->obj == NULL) {
    lua_pushfstring(L, "invalid XPath expression '%s': %s", expr,
                    xpath_message(r->ctx->lastError.code));
    return luaio__argerror(L, 2, fname, lua_tostring(L, -1));
  }
  push_xresult(L, docidx, r->obj);
  lua_pushcfunction(L, xpath_gc);
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);                              /* free them now */
  return 1;
}

/* ---- registration ------------------------------------------------------- */

void html__node_register (lua_State *L) {
  static const luaL_Reg methods[] = {
    {"attr", node_attr}, {"attrs", node_attrs}, {"text", node_text},
    {"html", node_html}, {"children", node_children},
    {"parent", node_parent}, {"select", node_select},
    {"select_one", node_select_one}, {"xpath", node_xpath}, {NULL, NULL}
  };
  if (luaL_newmetatable(L, HTML_NODE)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushcclosure(L, node_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, node_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
