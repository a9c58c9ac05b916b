/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * compare.c: the parser measurement of bench/html_corpus.sh. Parses every
 * file named on stdin with libxml2's HTML parser or gumbo and prints, per
 * file, the text and the a[href] values (fields split by 0x1f, records by
 * 0x1e) for html_compare.py; with -t it only times the parses instead.
 *
 *   compare libxml2|gumbo [-t runs] < list-of-files
 */
#include <gumbo.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct buf { char *p; size_t n, cap; } buf;

static void put (buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static int skipped (const char *tag) {
  return !strcmp(tag, "script") || !strcmp(tag, "style") ||
         !strcmp(tag, "head") || !strcmp(tag, "template");
}

static void x_walk (xmlNode *n, buf *text, buf *links) {
  for (; n; n = n->next) {
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
      put(text, (const char *)n->content, strlen((char *)n->content));
    else if (n->type == XML_ELEMENT_NODE) {
      const char *tag = (const char *)n->name;
      if (!strcmp(tag, "a")) {
        xmlChar *h = xmlGetProp(n, (const xmlChar *)"href");
        if (h) {
          put(links, (char *)h, strlen((char *)h));
          put(links, "\x1f", 1);
          xmlFree(h);
        }
      }
      if (!skipped(tag)) x_walk(n->children, text, links);
    }
  }
}

static void g_walk (GumboNode *n, buf *text, buf *links) {
  if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE ||
      n->type == GUMBO_NODE_CDATA) {
    put(text, n->v.text.text, strlen(n->v.text.text));
    return;
  }
  if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_DOCUMENT &&
      n->type != GUMBO_NODE_TEMPLATE) return;
  GumboVector *kids = n->type == GUMBO_NODE_DOCUMENT ?
    &n->v.document.children : &n->v.element.children;
  if (n->type != GUMBO_NODE_DOCUMENT) {
    const char *tag = gumbo_normalized_tagname(n->v.element.tag);
    if (n->v.element.tag == GUMBO_TAG_UNKNOWN) tag = "";
    if (!strcmp(tag, "a")) {
      GumboAttribute *h = gumbo_get_attribute(&n->v.element.attributes, "href");
      if (h) { put(links, h->value, strlen(h->value)); put(links, "\x1f", 1); }
    }
    if (skipped(tag)) return;
  }
  for (unsigned i = 0; i < kids->length; i++)
    g_walk(kids->data[i], text, links);
}

static char *slurp (const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc(n + 1);
  *len = fread(p, 1, n, f);
  p[*len] = 0;
  fclose(f);
  return p;
}

static void one (int gumbo, const char *s, size_t n, buf *text, buf *links) {
  if (gumbo) {
    GumboOutput *o = gumbo_parse_with_options(&kGumboDefaultOptions, s, n);
    if (text) g_walk(o->document, text, links);
    gumbo_destroy_output(&kGumboDefaultOptions, o);
  } else {
    htmlDocPtr d = htmlReadMemory(s, (int)n, NULL, NULL, HTML_PARSE_RECOVER |
      HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    if (d && text) x_walk(d->children, text, links);
    xmlFreeDoc(d);
  }
}

int main (int argc, char **argv) {
  int gumbo = argc > 1 && !strcmp(argv[1], "gumbo");
  int runs = argc > 3 && !strcmp(argv[2], "-t") ? atoi(argv[3]) : 0;
  char line[4096];
  char **docs = NULL; size_t *lens = NULL; int nd = 0;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    docs = realloc(docs, (nd + 1) * sizeof *docs);
    lens = realloc(lens, (nd + 1) * sizeof *lens);
    if (!(docs[nd] = slurp(line, &lens[nd]))) continue;
    if (!runs) {
      buf text = {0}, links = {0};
      put(&text, "", 0); put(&links, "", 0);
      one(gumbo, docs[nd], lens[nd], &text, &links);
      printf("%s\x1d%s\x1d%s\x1e", line, text.p, links.p);
      free(text.p); free(links.p);
    }
    nd++;
  }
  for (int r = 0; r < runs; r++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < nd; i++) one(gumbo, docs[i], lens[i], NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", (b.tv_sec - a.tv_sec) * 1e3 +
                      (b.tv_nsec - a.tv_nsec) / 1e6);
  }
  return 0;
}
