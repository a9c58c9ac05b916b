/* SPDX-License-Identifier: MIT (see LICENSE) */
/*
 * html_cut.c: where html.parser may end a chunk it hands to libxml2.
 *
 * libxml2 2.9's push parser builds another tree when a chunk ends in
 * some places than when the same bytes come in one piece:
 *   - inside a script or style: a raw text step that starts at a "</"
 *     which is not the end tag reads to the end of the chunk, then takes
 *     what follows for an end tag ("<script></>" | "</body>" closes the
 *     script; whole, "</></body>" is the script's text);
 *   - inside a comment: its look-ahead accepts the "-->" that overlaps
 *     "<!--" ("<!-->"), the comment then fails on the short chunk and
 *     the next chunk is text; whole, the comment runs on to a real end;
 *   - after a "</" that a chunk ends on (the first version of this cut
 *     was for that one).
 * So a chunk ends only just after a '>' outside any comment, script or
 * style. A small scanner follows that much of the tokenizer across
 * feeds. It does not follow tags: where libxml2 reads "<!<style>" as
 * text then a style, or "<a b=<!--x>" as a tag, the scanner takes each
 * "<!--", "<script" and "<style" for what it starts, and each one stays
 * open until its own end ("-->", "</script", "</style"), whatever else
 * is open: it may hold input back for longer than needed, never less.
 */
#include "html.h"
#include <ctype.h>

enum { OPEN_COMMENT = 1, OPEN_SCRIPT = 2, OPEN_STYLE = 4 };
#define MORE ((size_t)-1)       /* too few bytes to tell */

/* Does s (n bytes) start with w, ASCII case ignored (w is lowercase)?
 * -1: too few bytes to tell. */
static int starts (const char *s, size_t n, const char *w) {
  size_t i;
  for (i = 0; w[i]; i++) {
    if (i == n) return -1;
    if (tolower((unsigned char)s[i]) != w[i]) return 0;
  }
  return 1;
}

/* A character of a tag name, as libxml2's htmlParseHTMLName reads it. */
static int name_char (int c) {
  return isalnum(c) || c == ':' || c == '-' || c == '_' || c == '.';
}

static const struct { const char *start, *end; int bit; } raw[] = {
  {"<script", "</script", OPEN_SCRIPT}, {"<style", "</style", OPEN_STYLE},
};

/* Does s (n bytes) start with the tag w ("<script", "</style"): w then
 * no other name character? -1: too few bytes to tell. libxml2 stops a
 * script's text at "</scriptx" too, but that end tag names another
 * element and the script goes on. */
static int starts_tag (const char *s, size_t n, const char *w) {
  size_t len = strlen(w);
  int m = starts(s, n, w);
  if (m == 1 && n == len) return -1;
  return m == 1 ? !name_char((unsigned char)s[len]) : m;
}

/* At a '<' (n bytes from it): a raw text element's end tag or start
 * tag. Returns the bytes it takes (0: neither, MORE) and updates *open. */
static size_t raw_tag (const char *s, size_t n, int *open) {
  size_t i;
  int m;
  for (i = 0; i < sizeof raw / sizeof raw[0]; i++) {
    if ((m = starts_tag(s, n, raw[i].end)) < 0) return MORE;
    if (m == 1) { *open &= ~raw[i].bit; return strlen(raw[i].end); }
    if ((m = starts_tag(s, n, raw[i].start)) < 0) return MORE;
    if (m == 1) { *open |= raw[i].bit; return strlen(raw[i].start); }
  }
  return 0;
}

/* Is the "-->" at s[i] the end of a comment? Not when it overlaps a
 * "<!--" ("<!-->", "<!--->"): libxml2's look-ahead takes those for one,
 * its comment parser does not, and which wins depends on the chunks. */
static int comment_end (const char *s, size_t i) {
  return !(i >= 2 && s[i - 2] == '<' && s[i - 1] == '!')
         && !(i >= 3 && s[i - 3] == '<' && s[i - 2] == '!'
              && s[i - 1] == '-');
}

/* One step at s[i] of the held input s (n bytes): the bytes it takes,
 * or MORE. A raw text element's start tag is skipped to its '>' (its
 * text starts there: "<script</scriptx>" is a start tag). */
static size_t step (html_cut *c, const char *s, size_t i, size_t n) {
  int m;
  if (c->in_tag) {
    const char *gt = memchr(s + i, '>', n - i);
    c->in_tag = gt == NULL;
    return gt ? (size_t)(gt - s) - i + 1 : n - i;
  }
  if (s[i] == '<') {
    int before = c->open;
    size_t k;
    if ((m = starts(s + i, n - i, "<!--")) < 0) return MORE;
    if (m == 1) { c->open |= OPEN_COMMENT; return 4; }
    k = raw_tag(s + i, n - i, &c->open);
    c->in_tag = (c->open & ~before) != 0;
    return k;
  }
  if (s[i] == '-' && (c->open & OPEN_COMMENT)) {
    if ((m = starts(s + i, n - i, "-->")) < 0) return MORE;
    if (m == 1 && comment_end(s, i)) {
      c->open &= ~OPEN_COMMENT;
      if (c->open == 0) c->safe = i + 3;
      return 3;
    }
  }
  if (s[i] == '>' && c->open == 0) c->safe = i + 1;
  return 0;
}

size_t html__cut_scan (html_cut *c, const char *s, size_t n) {
  while (c->pos < n) {
    size_t k = step(c, s, c->pos, n);
    if (k == MORE) break;
    c->pos += k ? k : 1;
  }
  return c->safe;
}

void html__cut_fed (html_cut *c, size_t fed) {
  c->pos = c->pos > fed ? c->pos - fed : 0;
  c->safe = c->safe > fed ? c->safe - fed : 0;
}
