package pgstore

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// replacement stands in for what PostgreSQL cannot store.
const replacement = "\uFFFD"

// pgText returns s as PostgreSQL's text type accepts it: NUL bytes and invalid UTF-8 become U+FFFD.
// Task output and log lines are whatever a program printed; one such byte must not fail a batch.
func pgText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, replacement), "\x00", replacement)
}

// pgJSON returns raw as jsonb accepts it, "" for none: a \u0000 escape or invalid UTF-8 inside
// strings becomes U+FFFD, and a value that is not JSON at all is kept as a JSON string of its text.
func pgJSON(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	if utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u0000`)) && json.Valid(raw) {
		return string(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		out, _ := json.Marshal(pgText(string(raw))) //nolint:errchkjson // a string always encodes
		return string(out)
	}
	out, err := json.Marshal(scrubJSON(v))
	if err != nil {
		out, _ = json.Marshal(pgText(string(raw))) //nolint:errchkjson // a string always encodes
	}
	return string(out)
}

// scrubJSON applies pgText to every string and object key of a decoded JSON value.
func scrubJSON(v any) any {
	switch x := v.(type) {
	case string:
		return pgText(x)
	case []any:
		for i := range x {
			x[i] = scrubJSON(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[pgText(k)] = scrubJSON(e)
		}
		return out
	}
	return v
}
