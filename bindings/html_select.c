/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * html_select.c: CSS selectors (Level 3, plus :has and :contains),
 * compiled once into a small program and matched against libxml2 trees.
 *
 * A program is a selector list; each complex selector is an array of
 * compound selectors, each holding its simple selectors and the
 * combinator to its left. Matching runs right to left, as browsers do:
 * the rightmost compound must match the element, then the combinator
 * picks the candidates (parent, ancestors, previous siblings) for the
 * compound before it. :has() holds relative selectors whose leftmost
 * combinator relates them to the element :has() is tested on (the
 * anchor).
 *
 * Plain C, no Lua: a compile error comes back as a message, so nothing
 * longjmps over the half-built program. libxml2's HTML parser lowercases
 * tag and attribute names, so type and attribute names are lowercased
 * here once.
 */
#include "html.h"
#include <ctype.h>

#define SEL_MAX_NEST 16        /* :not(:has(:not(...))) depth */

enum { S_TYPE, S_ID, S_CLASS, S_ATTR, S_NTH, S_NOT, S_HAS, S_CONTAINS,
       S_EMPTY, S_ROOT };
enum { A_EXISTS, A_EQ, A_INCLUDES, A_DASH, A_PREFIX, A_SUFFIX, A_SUBSTR };
#define NTH_LAST 1              /* count from the end */
#define NTH_TYPE 2              /* count siblings of the same name only */

typedef struct simple {
  unsigned char kind, op, icase, nth;
  int a, b;                     /* S_NTH: an+b */
  char *name, *value;
  html_sel *list;               /* S_NOT, S_HAS */
} simple;

typedef struct compound {
  simple *v;
  int n;
  char comb;                    /* to its left: 0, ' ', '>', '+', '~' */
  char greedy;                  /* only descendant combinators from here
                                   to the left end (see match_rest) */
} compound;

typedef struct complex {
  compound *v;
  int n;
} complex;

struct html_sel {
  complex *v;
  int n;
};

/* ---- freeing ------------------------------------------------------------ */

static void compound_free (compound *c) {
  int i;
  for (i = 0; i < c->n; i++) {
    free(c->v[i].name);
    free(c->v[i].value);
    html__sel_free(c->v[i].list);
  }
  free(c->v);
}

void html__sel_free (html_sel *s) {
  int i, j;
  if (s == NULL) return;
  for (i = 0; i < s->n; i++) {
    for (j = 0; j < s->v[i].n; j++) compound_free(&s->v[i].v[j]);
    free(s->v[i].v);
  }
  free(s->v);
  free(s);
}

/* Grow the array *v of n items of size sz by one zeroed item; returns it
 * or NULL (out of memory). */
static void *grow (void *v, int n, size_t sz) {
  char *p = realloc(*(void **)v, (size_t)(n + 1) * sz);
  if (p == NULL) return NULL;
  *(void **)v = p;
  memset(p + (size_t)n * sz, 0, sz);
  return p + (size_t)n * sz;
}

/* ---- the parser --------------------------------------------------------- */

typedef struct parser {
  const char *s;
  size_t len, pos;
  char *err;
  size_t errsize;
  int depth;
  int failed;
} parser;

/* Record the first error, at the current position. Returns 0. */
static int fail (parser *p, const char *msg) {
  if (!p->failed) {
    p->failed = 1;
    if (p->pos < p->len)
      snprintf(p->err, p->errsize, "%s at position %zu ('%c')", msg,
               p->pos + 1, isprint((unsigned char)p->s[p->pos]) ?
               p->s[p->pos] : '?');
    else
      snprintf(p->err, p->errsize, "%s at position %zu (end)", msg,
               p->pos + 1);
  }
  return 0;
}

static int peek (parser *p) {
  return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int skip_ws (parser *p) {
  size_t start = p->pos;
  while (p->pos < p->len && strchr(" \t\n\r\f", p->s[p->pos]) != NULL)
    p->pos++;
  return p->pos > start;
}

static int ident_char (int c) {
  return c >= 0x80 || isalnum(c) || c == '-' || c == '_';
}

static int ident_start (parser *p) {
  int c = peek(p);
  if (c == '-' && p->pos + 1 < p->len)
    c = (unsigned char)p->s[p->pos + 1];
  return c >= 0x80 || isalpha(c) || c == '_' || c == '\\';
}

/* Append the UTF-8 form of code point cp to out (room for 4 bytes). */
static size_t put_utf8 (char *out, unsigned long cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    cp = 0xFFFD;
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* A backslash escape at p->pos (after the backslash): up to 6 hex digits
 * and one optional space, or the character itself. Appends to out. */
static size_t escape (parser *p, char *out) {
  unsigned long cp = 0;
  int n = 0;
  while (n < 6 && p->pos < p->len && isxdigit((unsigned char)p->s[p->pos])) {
    char c = p->s[p->pos++];
    cp = cp * 16 + (unsigned long)(isdigit((unsigned char)c) ? c - '0' :
                                   tolower((unsigned char)c) - 'a' + 10);
    n++;
  }
  if (n > 0) {
    if (p->pos < p->len && strchr(" \t\n\r\f", p->s[p->pos])) p->pos++;
    return put_utf8(out, cp);
  }
  if (p->pos >= p->len) return 0;
  out[0] = p->s[p->pos++];
  return 1;
}

/* An identifier (or, with quoted, a string in ' or "), decoded into a
 * new string; lower: ASCII-lowercase it. NULL on error (recorded). */
static char *word (parser *p, int quoted, int lower) {
  int q = quoted ? peek(p) : 0;
  char *out = malloc(p->len * 4 + 1), *o = out;
  if (out == NULL) return fail(p, "out of memory"), NULL;
  if (q) p->pos++;
  while (p->pos < p->len) {
    int c = (unsigned char)p->s[p->pos];
    if (q ? c == q : !ident_char(c) && c != '\\') break;
    p->pos++;
    if (c == '\\') { o += escape(p, o); continue; }
    *o++ = (char)(lower ? tolower(c) : c);
  }
  if (q && peek(p) != q) {
    free(out);
    return fail(p, "unterminated string"), NULL;
  }
  if (q) p->pos++;
  else if (o == out) {
    free(out);
    return fail(p, "expected a name"), NULL;
  }
  *o = 0;
  return out;
}

static int expect (parser *p, int c, const char *msg) {
  skip_ws(p);
  if (peek(p) != c) return fail(p, msg);
  p->pos++;
  return 1;
}

static html_sel *parse_list (parser *p, int relative);

/* [name], [name op value], [name op value i]: the part after '['. */
static int parse_attr (parser *p, simple *s) {
  static const char ops[] = "=~|^$*";
  int c;
  skip_ws(p);
  if ((s->name = word(p, 0, 1)) == NULL) return 0;
  skip_ws(p);
  c = peek(p);
  s->kind = S_ATTR;
  if (c == ']') { p->pos++; s->op = A_EXISTS; return 1; }
  if (c < 0 || strchr(ops, c) == NULL) return fail(p, "expected ']' or an "
                                                   "attribute operator");
  s->op = (unsigned char)(A_EQ + (strchr(ops, c) - ops));
  if (c != '=' && (p->pos++, peek(p) != '=')) return fail(p, "expected '='");
  p->pos++;
  skip_ws(p);
  c = peek(p);
  s->value = word(p, c == '"' || c == '\'', 0);
  if (s->value == NULL) return 0;
  skip_ws(p);
  if (peek(p) == 'i' || peek(p) == 'I') { p->pos++; s->icase = 1; }
  else if (peek(p) == 's' || peek(p) == 'S') p->pos++;
  return expect(p, ']', "expected ']'");
}

/* An integer at p->pos (digits only); -1 if none. */
static long number (parser *p) {
  long n = -1;
  while (p->pos < p->len && isdigit((unsigned char)p->s[p->pos])) {
    n = (n < 0 ? 0 : n) * 10 + (p->s[p->pos++] - '0');
    if (n > 1000000000) return fail(p, "number too large"), -1;
  }
  return n;
}

/* an+b (or odd, even) inside :nth-*( ), up to the ')'. */
static int parse_nth (parser *p, simple *s) {
  long a = 0, b = 0, n;
  int sign = 1;
  skip_ws(p);
  if (p->len - p->pos >= 3 && !strncasecmp(p->s + p->pos, "odd", 3))
    { p->pos += 3; s->a = 2; s->b = 1; return expect(p, ')', "expected ')'"); }
  if (p->len - p->pos >= 4 && !strncasecmp(p->s + p->pos, "even", 4))
    { p->pos += 4; s->a = 2; s->b = 0; return expect(p, ')', "expected ')'"); }
  if (peek(p) == '-' || peek(p) == '+')
    sign = peek(p) == '-' ? -1 : 1, p->pos++;
  n = number(p);
  if (p->failed) return 0;
  if (peek(p) == 'n' || peek(p) == 'N') {
    p->pos++;
    a = sign * (n < 0 ? 1 : n);
    skip_ws(p);
    if (peek(p) == '+' || peek(p) == '-') {
      sign = peek(p) == '-' ? -1 : 1;
      p->pos++;
      skip_ws(p);
      if ((n = number(p)) < 0) return fail(p, "expected a number");
      b = sign * n;
    }
  }
  else if (n < 0) return fail(p, "expected an+b, odd or even");
  else b = sign * n;
  s->a = (int)a;
  s->b = (int)b;
  return expect(p, ')', "expected ')'");
}

/* The argument of :not( ) or :has( ), up to the ')'. */
static int parse_nested (parser *p, simple *s, int relative) {
  if (++p->depth > SEL_MAX_NEST) return fail(p, "selector nested too deep");
  s->list = parse_list(p, relative);
  p->depth--;
  return s->list != NULL && expect(p, ')', "expected ')'");
}

static const struct { const char *name; unsigned char kind, nth; int a, b; }
pseudos[] = {
  {"first-child", S_NTH, 0, 0, 1}, {"last-child", S_NTH, NTH_LAST, 0, 1},
  {"first-of-type", S_NTH, NTH_TYPE, 0, 1},
  {"last-of-type", S_NTH, NTH_TYPE | NTH_LAST, 0, 1},
  {"empty", S_EMPTY, 0, 0, 0}, {"root", S_ROOT, 0, 0, 0},
  {"nth-child(", S_NTH, 0, 0, 0}, {"nth-last-child(", S_NTH, NTH_LAST, 0, 0},
  {"nth-of-type(", S_NTH, NTH_TYPE, 0, 0},
  {"nth-last-of-type(", S_NTH, NTH_TYPE | NTH_LAST, 0, 0},
  {"not(", S_NOT, 0, 0, 0}, {"has(", S_HAS, 0, 0, 0},
  {"contains(", S_CONTAINS, 0, 0, 0},
};

/* :only-child and :only-of-type are first and last at once: two simple
 * selectors. Returns how many it added (c->n grows), 0 on error. */
static int parse_pseudo (parser *p, compound *c) {
  size_t start = p->pos, i;
  char *name;
  simple *s;
  if (peek(p) == ':') return fail(p, "pseudo-elements are not supported");
  if ((name = word(p, 0, 1)) == NULL) return 0;
  if (peek(p) == '(') { strcat(name, "("); p->pos++; }
  for (i = 0; i < sizeof pseudos / sizeof *pseudos; i++)
    if (!strcmp(pseudos[i].name, name)) break;
  if (!strcmp(name, "only-child") || !strcmp(name, "only-of-type")) {
    unsigned char t = name[5] == 'o' ? NTH_TYPE : 0;
    free(name);
    if (!(s = grow(&c->v, c->n++, sizeof *s))) return fail(p, "out of memory");
    s->kind = S_NTH, s->nth = t, s->b = 1;
    if (!(s = grow(&c->v, c->n++, sizeof *s))) return fail(p, "out of memory");
    s->kind = S_NTH, s->nth = t | NTH_LAST, s->b = 1;
    return 1;
  }
  free(name);
  if (i == sizeof pseudos / sizeof *pseudos) {
    p->pos = start;
    return fail(p, "unknown pseudo-class");
  }
  if (!(s = grow(&c->v, c->n++, sizeof *s))) return fail(p, "out of memory");
  s->kind = pseudos[i].kind, s->nth = pseudos[i].nth;
  s->a = pseudos[i].a, s->b = pseudos[i].b;
  if (s->kind == S_NTH && s->b == 0) return parse_nth(p, s);
  if (s->kind == S_NOT || s->kind == S_HAS)
    return parse_nested(p, s, s->kind == S_HAS);
  if (s->kind == S_CONTAINS) {
    int q;
    skip_ws(p);
    q = peek(p);
    s->value = word(p, q == '"' || q == '\'', 0);
    return s->value != NULL && expect(p, ')', "expected ')'");
  }
  return 1;
}

/* One simple selector after a type selector or another simple one. */
static int parse_simple (parser *p, compound *c) {
  int ch = peek(p);
  simple *s;
  p->pos++;
  if (ch == ':') return parse_pseudo(p, c);
  if (!(s = grow(&c->v, c->n++, sizeof *s))) return fail(p, "out of memory");
  if (ch == '[') return parse_attr(p, s);
  s->kind = ch == '#' ? S_ID : S_CLASS;
  if (ch == '.' && !ident_start(p)) return fail(p, "expected a class name");
  return (s->value = word(p, 0, 0)) != NULL;
}

/* A compound selector: [type|*] then #id .class [attr] :pseudo, no
 * space between them. */
static int parse_compound (parser *p, compound *c) {
  int any = 0;
  if (peek(p) == '*') { p->pos++; any = 1; }
  else if (ident_start(p)) {
    simple *s = grow(&c->v, c->n++, sizeof *s);
    if (s == NULL) return fail(p, "out of memory");
    s->kind = S_TYPE;
    if ((s->name = word(p, 0, 1)) == NULL) return 0;
    any = 1;
  }
  while (peek(p) >= 0 && strchr("#.[:", peek(p)) != NULL) {
    if (!parse_simple(p, c)) return 0;
    any = 1;
  }
  return any ? 1 : fail(p, "expected a selector");
}

/* A complex selector: compounds joined by combinators. relative: it may
 * start with a combinator (inside :has, descendant by default). */
static int parse_complex (parser *p, complex *x, int relative) {
  char comb = relative ? ' ' : 0;
  skip_ws(p);
  for (;;) {
    compound *c;
    int c0 = peek(p);
    if (c0 == '>' || c0 == '+' || c0 == '~') {
      if (x->n == 0 && !relative) return fail(p, "expected a selector");
      comb = (char)c0;
      p->pos++;
      skip_ws(p);
    }
    if (!(c = grow(&x->v, x->n++, sizeof *c))) return fail(p, "out of memory");
    c->comb = comb;
    if (!parse_compound(p, c)) return 0;
    c->greedy = (char)(c->comb == 0 || c->comb == ' ');
    if (x->n > 1) c->greedy = (char)(c->greedy && x->v[x->n - 2].greedy);
    comb = skip_ws(p) ? ' ' : 0;
    c0 = peek(p);
    if (c0 < 0 || c0 == ',' || c0 == ')') return 1;
    if (!comb && c0 != '>' && c0 != '+' && c0 != '~')
      return fail(p, "unexpected character");
  }
}

static html_sel *parse_list (parser *p, int relative) {
  html_sel *s = calloc(1, sizeof *s);
  if (s == NULL) return fail(p, "out of memory"), NULL;
  for (;;) {
    complex *x = grow(&s->v, s->n++, sizeof *x);
    if (x == NULL) { fail(p, "out of memory"); break; }
    if (!parse_complex(p, x, relative)) break;
    if (peek(p) != ',') return s;
    p->pos++;
  }
  html__sel_free(s);
  return NULL;
}

html_sel *html__sel_compile (const char *css, size_t len, char *err,
                             size_t errsize) {
  parser p = {css, len, 0, err, errsize, 0, 0};
  html_sel *s = parse_list(&p, 0);
  if (s != NULL && p.pos < p.len) {
    fail(&p, "unexpected character");
    html__sel_free(s);
    return NULL;
  }
  return s;
}

/* ---- matching ----------------------------------------------------------- */

static int is_elem (const xmlNode *n) {
  return n != NULL && n->type == XML_ELEMENT_NODE;
}

static xmlNode *parent_elem (xmlNode *n) {
  return is_elem(n->parent) ? n->parent : NULL;
}

static xmlNode *prev_elem (xmlNode *n) {
  for (n = n->prev; n != NULL && !is_elem(n); n = n->prev) {}
  return n;
}

static xmlNode *next_elem (xmlNode *n) {
  for (n = n->next; n != NULL && !is_elem(n); n = n->next) {}
  return n;
}

xmlNode *html__next_element (xmlNode *n, xmlNode *root) {
  do {
    if (n->children != NULL && n->type != XML_ENTITY_REF_NODE &&
        n->type != XML_ATTRIBUTE_NODE)
      n = n->children;
    else {
      while (n != root && n->next == NULL) n = n->parent;
      if (n == root) return NULL;
      n = n->next;
    }
  } while (!is_elem(n));
  return n;
}

static int same (const char *a, const char *b, size_t n, int icase) {
  return icase ? strncasecmp(a, b, n) == 0 : strncmp(a, b, n) == 0;
}

/* Is word w one of the whitespace-separated words of v? */
static int has_word (const char *v, const char *w, int icase) {
  size_t wl = strlen(w);
  if (wl == 0 || strpbrk(w, " \t\n\r\f") != NULL) return 0;
  while (*v) {
    size_t n;
    v += strspn(v, " \t\n\r\f");
    n = strcspn(v, " \t\n\r\f");
    if (n == wl && same(v, w, n, icase)) return 1;
    v += n;
  }
  return 0;
}

static int attr_test (int op, const char *v, const char *w, int icase) {
  size_t vl = strlen(v), wl = strlen(w);
  switch (op) {
  case A_EXISTS: return 1;
  case A_EQ: return vl == wl && same(v, w, vl, icase);
  case A_INCLUDES: return has_word(v, w, icase);
  case A_DASH: return (vl == wl || (vl > wl && v[wl] == '-')) &&
                      same(v, w, wl, icase);
  case A_PREFIX: return wl > 0 && vl >= wl && same(v, w, wl, icase);
  case A_SUFFIX: return wl > 0 && vl >= wl && same(v + vl - wl, w, wl, icase);
  default: {                    /* A_SUBSTR */
    size_t i;
    for (i = 0; wl > 0 && i + wl <= vl; i++)
      if (same(v + i, w, wl, icase)) return 1;
    return 0;
  }
  }
}

/* Test attribute name of el with op against w. */
static int match_attr (xmlNode *el, const char *name, int op, const char *w,
                       int icase) {
  xmlAttr *a;
  for (a = el->properties; a != NULL; a = a->next) {
    if (strcmp((const char *)a->name, name) != 0) continue;
    if (op == A_EXISTS) return 1;
    if (a->children != NULL && a->children->next == NULL &&
        a->children->type == XML_TEXT_NODE)       /* the usual case */
      return attr_test(op, (const char *)a->children->content, w, icase);
    else {
      xmlChar *v = xmlNodeGetContent((xmlNode *)a);
      int r = attr_test(op, v ? (const char *)v : "", w, icase);
      xmlFree(v);
      return r;
    }
  }
  return 0;
}

/* Position of el among its element siblings (1-based), counted from the
 * end with NTH_LAST, among those of its name with NTH_TYPE. */
static long position (xmlNode *el, int how) {
  long pos = 1;
  xmlNode *s = el;
  for (;;) {
    s = how & NTH_LAST ? next_elem(s) : prev_elem(s);
    if (s == NULL) return pos;
    if (!(how & NTH_TYPE) || xmlStrEqual(s->name, el->name)) pos++;
  }
}

static int match_nth (const simple *s, xmlNode *el) {
  long d = position(el, s->nth) - s->b;
  if (s->a == 0 || d == 0) return d == 0;
  return (d > 0) == (s->a > 0) && d % s->a == 0;   /* d = a*n, n >= 0 */
}

static int is_empty (xmlNode *el) {
  xmlNode *c;
  for (c = el->children; c != NULL; c = c->next)
    if (c->type != XML_COMMENT_NODE && c->type != XML_PI_NODE) return 0;
  return 1;
}

static int contains (xmlNode *el, const char *w) {
  xmlChar *t = xmlNodeGetContent(el);
  int r = t != NULL && strstr((const char *)t, w) != NULL;
  xmlFree(t);
  return r;
}

static int match_has (const html_sel *s, xmlNode *anchor);

static int match_simple (const simple *s, xmlNode *el) {
  switch (s->kind) {
  case S_TYPE: return el->name[0] == (xmlChar)s->name[0] &&
                      strcmp((const char *)el->name, s->name) == 0;
  case S_ID: return match_attr(el, "id", A_EQ, s->value, 0);
  case S_CLASS: return match_attr(el, "class", A_INCLUDES, s->value, 0);
  case S_ATTR: return match_attr(el, s->name, s->op, s->value, s->icase);
  case S_NTH: return match_nth(s, el);
  case S_NOT: return !html__sel_match(s->list, el);
  case S_HAS: return match_has(s->list, el);
  case S_CONTAINS: return contains(el, s->value);
  case S_EMPTY: return is_empty(el);
  default: return el->parent != NULL &&          /* S_ROOT */
                  el->parent->type == XML_HTML_DOCUMENT_NODE;
  }
}

static int match_compound (const compound *c, xmlNode *el) {
  int i;
  for (i = 0; i < c->n; i++)
    if (!match_simple(&c->v[i], el)) return 0;
  return 1;
}

/* Is anchor related to el as comb says (the relative selectors of :has:
 * el is a descendant, a child, the next or a later sibling of anchor)? */
static int related (char comb, xmlNode *el, xmlNode *anchor) {
  xmlNode *n;
  switch (comb) {
  case '>': return el->parent == anchor;
  case '+': return prev_elem(el) == anchor;
  case '~':
    for (n = prev_elem(el); n != NULL; n = prev_elem(n))
      if (n == anchor) return 1;
    return 0;
  default:
    for (n = el->parent; n != NULL; n = n->parent)
      if (n == anchor) return 1;
    return 0;
  }
}

static int match_rest (const complex *x, int i, xmlNode *el,
                       xmlNode *anchor);

/* Does compound i of x (and those left of it) match at el? anchor: the
 * element of :has(), or NULL. Recursion depth is the compound count. */
static int match_at (const complex *x, int i, xmlNode *el, xmlNode *anchor) {
  return match_compound(&x->v[i], el) && match_rest(x, i, el, anchor);
}

/* Do the compounds left of i match, given that i matches at el? For a
 * descendant combinator, when compound i-1 matches at an ancestor but
 * what is left of it fails there, a higher ancestor can only fail too
 * if only descendant combinators follow to the left (greedy): each
 * higher one has fewer ancestors to offer. Stopping there keeps
 * "div div div p" linear in the depth instead of exponential. */
static int match_rest (const complex *x, int i, xmlNode *el,
                       xmlNode *anchor) {
  const compound *c = &x->v[i];
  xmlNode *n;
  if (i == 0) return anchor == NULL || related(c->comb, el, anchor);
  switch (c->comb) {
  case '>': return (n = parent_elem(el)) && match_at(x, i - 1, n, anchor);
  case '+': return (n = prev_elem(el)) && match_at(x, i - 1, n, anchor);
  case '~':
    for (n = prev_elem(el); n != NULL; n = prev_elem(n))
      if (match_at(x, i - 1, n, anchor)) return 1;
    return 0;
  default:
    for (n = parent_elem(el); n != NULL; n = parent_elem(n))
      if (match_compound(&x->v[i - 1], n)) {
        if (match_rest(x, i - 1, n, anchor)) return 1;
        if (x->v[i - 1].greedy) return 0;
      }
    return 0;
  }
}

int html__sel_match (const html_sel *s, xmlNode *el) {
  int i;
  for (i = 0; i < s->n; i++)
    if (match_at(&s->v[i], s->v[i].n - 1, el, NULL)) return 1;
  return 0;
}

/* :has(): some element after anchor (its subtree, or its later siblings
 * and theirs for + and ~) matches a relative selector of s. */
static int match_has (const html_sel *s, xmlNode *anchor) {
  int i;
  for (i = 0; i < s->n; i++) {
    const complex *x = &s->v[i];
    int sib = x->v[0].comb == '+' || x->v[0].comb == '~';
    xmlNode *root = sib ? anchor->parent : anchor, *n = sib ? anchor : root;
    if (root == NULL) continue;
    while ((n = html__next_element(n, root)) != NULL)
      if (match_at(x, x->n - 1, n, anchor)) return 1;
  }
  return 0;
}
