package web

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/danielgtaylor/huma/v2"
)

// strictJSON is the API's JSON format: as huma's, except that a request body naming a key
// twice in one object is refused (400), not read as its last value, so that what a proxy or
// log sees of a request is what taskrace does.
var strictJSON = huma.Format{
	Marshal: huma.DefaultJSONFormat.Marshal,
	Unmarshal: func(data []byte, v any) error {
		if err := noDuplicateKeys(data); err != nil {
			return err
		}
		return json.Unmarshal(data, v)
	},
}

// noDuplicateKeys walks data's tokens and reports the first key repeated within an object.
// Malformed JSON is left for json.Unmarshal to report.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type object struct {
		keys  map[string]bool
		inKey bool // the next string token is a key
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or malformed JSON, which json.Unmarshal reports
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil {
					top.inKey = true // the object was a value: a key comes next
				}
				stack = append(stack, &object{keys: map[string]bool{}, inKey: true})
			case '[':
				stack = append(stack, nil)
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1] != nil {
					stack[len(stack)-1].inKey = true
				}
			}
		default:
			if top == nil {
				continue
			}
			if top.inKey {
				key, _ := t.(string)
				if top.keys[key] {
					return fmt.Errorf("the key %q appears twice in one object", key)
				}
				top.keys[key] = true
				top.inKey = false
			} else {
				top.inKey = true
			}
		}
	}
}
