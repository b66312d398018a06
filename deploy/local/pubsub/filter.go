package pubsub

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// matcher tells whether a message with these attributes passes a filter.
type matcher func(attrs map[string]string) bool

// parseFilter compiles a Pub/Sub subscription filter (the attribute
// language: attributes:KEY, attributes.KEY = "v", attributes.KEY != "v",
// hasPrefix(attributes.KEY, "p"), NOT / -, AND, OR, parentheses). The empty
// filter matches everything. Used by the filter gate, since the Cloud SDK
// emulator stores filters but does not apply them.
func parseFilter(src string) (matcher, error) {
	if strings.TrimSpace(src) == "" {
		return func(map[string]string) bool { return true }, nil
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	m, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, fmt.Errorf("filter: unexpected %q at %d", t.text, t.pos)
	}
	return m, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokLParen
	tokRParen
	tokComma
	tokDot
	tokColon
	tokEq
	tokNe
	tokMinus
)

type token struct {
	kind tokKind
	text string // identifier, or the unquoted string
	pos  int
}

// singleTokens are the tokens of one character.
var singleTokens = map[byte]tokKind{'(': tokLParen, ')': tokRParen, ',': tokComma, '.': tokDot, ':': tokColon, '=': tokEq, '-': tokMinus}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case singleTokens[c] != tokEOF:
			toks = append(toks, token{singleTokens[c], src[i : i+1], i})
			i++
		case c == '!' && i+1 < len(src) && src[i+1] == '=':
			toks = append(toks, token{tokNe, "!=", i})
			i += 2
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("filter: unterminated string at %d", i)
			}
			raw := src[i+1 : j]
			if c == '\'' {
				raw = strings.ReplaceAll(raw, `"`, `\"`)
				raw = strings.ReplaceAll(raw, `\'`, `'`)
			}
			s, err := strconv.Unquote(`"` + raw + `"`)
			if err != nil {
				return nil, fmt.Errorf("filter: bad string at %d: %w", i, err)
			}
			toks = append(toks, token{tokString, s, i})
			i = j + 1
		case isIdent(rune(c)):
			j := i
			for j < len(src) && isIdent(rune(src[j])) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("filter: unexpected %q at %d", c, i)
		}
	}
	return append(toks, token{tokEOF, "", len(src)}), nil
}

func isIdent(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

type filterParser struct {
	toks []token
	i    int
}

func (p *filterParser) peek() token { return p.toks[p.i] }
func (p *filterParser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *filterParser) expect(k tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, fmt.Errorf("filter: want %s at %d, got %q", what, t.pos, t.text)
	}
	return t, nil
}

func (p *filterParser) consume(k tokKind) bool {
	if p.peek().kind == k {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) keyword(word string) bool {
	t := p.peek()
	if t.kind == tokIdent && t.text == word {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) or() (matcher, error) {
	return p.chain("OR", p.and, func(l, r matcher) matcher {
		return func(a map[string]string) bool { return l(a) || r(a) }
	})
}

func (p *filterParser) and() (matcher, error) {
	return p.chain("AND", p.unary, func(l, r matcher) matcher {
		return func(a map[string]string) bool { return l(a) && r(a) }
	})
}

// chain parses operand (keyword operand)*, joining the operands from the
// left.
func (p *filterParser) chain(keyword string, operand func() (matcher, error), join func(l, r matcher) matcher) (matcher, error) {
	left, err := operand()
	if err != nil {
		return nil, err
	}
	for p.keyword(keyword) {
		right, err := operand()
		if err != nil {
			return nil, err
		}
		left = join(left, right)
	}
	return left, nil
}

func (p *filterParser) unary() (matcher, error) {
	if p.keyword("NOT") || p.consume(tokMinus) {
		m, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(a map[string]string) bool { return !m(a) }, nil
	}
	if p.peek().kind == tokLParen {
		p.next()
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, ")"); err != nil {
			return nil, err
		}
		return m, nil
	}
	return p.predicate()
}

// predicate: attributes:KEY | attributes.KEY (=|!=) STRING |
// hasPrefix(attributes.KEY, STRING).
func (p *filterParser) predicate() (matcher, error) {
	if p.keyword("hasPrefix") {
		if _, err := p.expect(tokLParen, "("); err != nil {
			return nil, err
		}
		if err := p.attributes(); err != nil {
			return nil, err
		}
		if _, err := p.expect(tokDot, "."); err != nil {
			return nil, err
		}
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokComma, ","); err != nil {
			return nil, err
		}
		prefix, err := p.expect(tokString, "a string")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, ")"); err != nil {
			return nil, err
		}
		return func(a map[string]string) bool {
			v, ok := a[key]
			return ok && strings.HasPrefix(v, prefix.text)
		}, nil
	}
	if err := p.attributes(); err != nil {
		return nil, err
	}
	switch t := p.next(); t.kind {
	case tokColon:
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		return func(a map[string]string) bool { _, ok := a[key]; return ok }, nil
	case tokDot:
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		op := p.next()
		if op.kind != tokEq && op.kind != tokNe {
			return nil, fmt.Errorf("filter: want = or != at %d, got %q", op.pos, op.text)
		}
		val, err := p.expect(tokString, "a string")
		if err != nil {
			return nil, err
		}
		if op.kind == tokEq {
			return func(a map[string]string) bool { v, ok := a[key]; return ok && v == val.text }, nil
		}
		return func(a map[string]string) bool { v, ok := a[key]; return !ok || v != val.text }, nil
	default:
		return nil, fmt.Errorf("filter: want : or . after attributes at %d, got %q", t.pos, t.text)
	}
}

func (p *filterParser) attributes() error {
	t := p.next()
	if t.kind != tokIdent || t.text != "attributes" {
		return fmt.Errorf("filter: want attributes at %d, got %q", t.pos, t.text)
	}
	return nil
}

// key is an attribute name: an identifier (with dashes) or a string.
func (p *filterParser) key() (string, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return t.text, nil
	case tokIdent:
		key := t.text
		// Keys may contain dashes: the lexer splits them into ident - ident.
		for p.peek().kind == tokMinus && p.toks[p.i+1].kind == tokIdent && p.toks[p.i+1].pos == p.peek().pos+1 && p.peek().pos == t.pos+len(key) {
			p.next()
			key += "-" + p.next().text
		}
		return key, nil
	}
	return "", fmt.Errorf("filter: want an attribute name at %d, got %q", t.pos, t.text)
}
