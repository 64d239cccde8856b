// Renders a Modelfile TEMPLATE the way an Ollama server does for POST /api/chat, with Go's
// own text/template, so tests/test_ollama_template.py can compare Folio's Python rendering
// byte for byte. Standard library only: it builds offline (GOTOOLCHAIN=local, GOPROXY=off).
//
// Written for Folio from a reading of Ollama's server (v0.30-v0.33): server/routes.go
// (ChatHandler: model SYSTEM, filterThinkTags for the qwen3 family), server/prompt.go
// (chatPrompt/renderPrompt: Think, ThinkLevel, IsThinkSet), template/template.go (Parse with
// missingkey=zero and its template functions; Execute: collate, the fields each message
// exposes, the "messages" path) and thinking/parser.go (how a leading <think> block is cut).
//
// stdin:  {"template": "...", "family": "qwen3", "system": "",
//          "cases": [{"messages": [{"role", "content", "thinking"}], "think": true|false|null}]}
// stdout: {"rendered": ["...", ...]}   or exit 1 with the error on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
)

type inMessage struct {
	Role     string `json:"role"`
	Content  string `json:"content"`
	Thinking string `json:"thinking"`
}

type inCase struct {
	Messages []inMessage `json:"messages"`
	Think    *bool       `json:"think"`
}

type input struct {
	Template string   `json:"template"`
	Family   string   `json:"family"`
	System   string   `json:"system"`
	Cases    []inCase `json:"cases"`
}

// The fields a template sees for each message (Ollama's templateMessage).
type toolCallFunction struct {
	Index     int
	Name      string
	Arguments map[string]any
}

type toolCall struct {
	ID       string
	Function toolCallFunction
}

type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     [][]byte
	ToolCalls  []toolCall
	ToolName   string
	ToolCallID string
}

// templateTools stands for Ollama's tool list; Folio sends no tools, so it is always nil.
type templateTools []map[string]any

func (t templateTools) String() string {
	out, _ := json.Marshal([]map[string]any(t))
	return string(out)
}

// The functions Ollama's template package defines (same names and signatures).
var funcs = template.FuncMap{
	"json": func(v any) string {
		out, _ := json.Marshal(v)
		return string(out)
	},
	"currentDate": func(args ...string) string {
		return time.Now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	},
	"toTypeScriptType": func(v any) string {
		return "any" // only tool parameters have another type, and Folio sends no tools
	},
}

// usesMessages reports whether the template reads .Messages (Ollama then renders the
// whole conversation in one execution instead of the legacy per-turn .Prompt/.Response).
func usesMessages(node parse.Node) bool {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, child := range n.Nodes {
			if usesMessages(child) {
				return true
			}
		}
	case *parse.ActionNode:
		return usesMessages(n.Pipe)
	case *parse.TemplateNode:
		return n.Pipe != nil && usesMessages(n.Pipe)
	case *parse.IfNode:
		return usesMessages(&n.BranchNode)
	case *parse.RangeNode:
		return usesMessages(&n.BranchNode)
	case *parse.WithNode:
		return usesMessages(&n.BranchNode)
	case *parse.BranchNode:
		return usesMessages(n.Pipe) || usesMessages(n.List) || (n.ElseList != nil && usesMessages(n.ElseList))
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, cmd := range n.Cmds {
			for _, arg := range cmd.Args {
				if usesMessages(arg) {
					return true
				}
			}
		}
	case *parse.FieldNode:
		return containsFold(n.Ident, "messages")
	case *parse.VariableNode:
		return containsFold(n.Ident, "messages")
	}
	return false
}

func containsFold(idents []string, name string) bool {
	for _, ident := range idents {
		if strings.EqualFold(ident, name) {
			return true
		}
	}
	return false
}

// withoutLeadingThink is what Ollama keeps of an earlier assistant turn of a qwen3-family
// model: a leading <think>...</think> block is cut (and the space after it); a turn that is
// only whitespace, or only the start of "<think>", keeps nothing.
func withoutLeadingThink(content string) string {
	const open, close = "<think>", "</think>"
	trimmed := strings.TrimLeftFunc(content, unicode.IsSpace)
	switch {
	case strings.HasPrefix(trimmed, open):
		rest := trimmed[len(open):]
		end := strings.Index(rest, close)
		if end < 0 {
			return "" // all of it is thinking
		}
		return strings.TrimLeftFunc(rest[end+len(close):], unicode.IsSpace)
	case trimmed == "" || strings.HasPrefix(open, trimmed):
		return ""
	}
	return content
}

// filterEarlierThinking applies withoutLeadingThink to assistant turns before the last user turn.
func filterEarlierThinking(messages []inMessage) {
	lastUser := -1
	for i, m := range messages {
		if m.Role == "user" {
			lastUser = i
		}
	}
	for i := range messages {
		if messages[i].Role == "assistant" && i < lastUser {
			messages[i].Content = withoutLeadingThink(messages[i].Content)
		}
	}
}

// collate joins every system text into .System and merges consecutive messages of the same
// role (tool results excepted) with a blank line; system messages stay in the list.
func collate(messages []inMessage) (string, []*templateMessage) {
	var system []string
	var out []*templateMessage
	for _, m := range messages {
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if len(out) > 0 && out[len(out)-1].Role == m.Role && m.Role != "tool" {
			out[len(out)-1].Content += "\n\n" + m.Content
			continue
		}
		out = append(out, &templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking})
	}
	return strings.Join(system, "\n\n"), out
}

func render(tmpl *template.Template, in input, c inCase) (string, error) {
	messages := append([]inMessage(nil), c.Messages...)
	if in.System != "" && (len(messages) == 0 || messages[0].Role != "system") {
		messages = append([]inMessage{{Role: "system", Content: in.System}}, messages...)
	}
	if in.Family == "qwen3" {
		filterEarlierThinking(messages)
	}
	system, collated := collate(messages)
	think, level := false, ""
	if c.Think != nil && *c.Think {
		think, level = true, "medium"
	}
	var out bytes.Buffer
	err := tmpl.Execute(&out, map[string]any{
		"System":     system,
		"Messages":   collated,
		"Tools":      templateTools(nil),
		"Response":   "",
		"Think":      think,
		"ThinkLevel": level,
		"IsThinkSet": c.Think != nil,
	})
	return out.String(), err
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "reading the input:", err)
		os.Exit(1)
	}
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(in.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parsing the template:", err)
		os.Exit(1)
	}
	if !usesMessages(tmpl.Tree.Root) {
		fmt.Fprintln(os.Stderr, "the template does not read .Messages: Ollama would render it turn by turn")
		os.Exit(1)
	}
	rendered := make([]string, 0, len(in.Cases))
	for i, c := range in.Cases {
		text, err := render(tmpl, in, c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "case %d: %v\n", i, err)
			os.Exit(1)
		}
		rendered = append(rendered, text)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"rendered": rendered}); err != nil {
		fmt.Fprintln(os.Stderr, "writing the output:", err)
		os.Exit(1)
	}
}
