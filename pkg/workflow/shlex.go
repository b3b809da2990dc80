package workflow

import (
	"errors"
	"fmt"
	"strings"
)

// splitCommand splits a command string into argv the way a POSIX shell splits words: blanks separate
// words, single quotes keep everything literally, double quotes keep everything but \" \\ \$ \` and a
// backslash-newline, and an unquoted backslash escapes the next character. Nothing is ever expanded
// and no shell runs, so characters that only a shell would interpret (| & ; < > ( ) $ `) are refused
// outside single quotes rather than passed on silently as arguments.
func splitCommand(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	endWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			endWord()
		case '\\':
			if i+1 >= len(s) {
				return nil, errors.New("ends with a lone backslash")
			}
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
				inWord = true
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("has an unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				d := s[i]
				if d == '"' {
					closed = true
					break
				}
				if d == '$' || d == '`' {
					return nil, shellOnly(d)
				}
				if d == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						cur.WriteByte(s[i])
					}
					continue
				}
				cur.WriteByte(d)
			}
			if !closed {
				return nil, errors.New("has an unterminated double quote")
			}
		case '|', '&', ';', '<', '>', '(', ')', '$', '`':
			return nil, shellOnly(c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	endWord()
	return words, nil
}

func shellOnly(c byte) error {
	return fmt.Errorf("uses %q, which only a shell understands, and no shell runs: quote it, or make it a shell task (executor: shell, or shell: true) to run it with /bin/sh -c", string(c))
}
