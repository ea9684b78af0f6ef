#!/usr/bin/env python3
"""Functions longer than N lines (default 80) in non-test Rust code.
usage: fnlen.py [--max N] DIR...   (skips tests/ dirs, tests.rs, and #[cfg(test)] mod blocks)"""
import os, re, sys
args = sys.argv[1:]; mx = 80
if args and args[0] == '--max': mx = int(args[1]); args = args[2:]
def strip(text):
    # blank out strings, chars and comments, keeping newlines
    out = []; i = 0; n = len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i); j = n if j < 0 else j; out.append(' ' * (j - i)); i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i); j = n if j < 0 else j + 2; out.append(re.sub(r'[^\n]', ' ', text[i:j])); i = j
        elif c == 'r' and re.match(r'r#*"', text[i:i+10]) and (i == 0 or not (text[i-1].isalnum() or text[i-1]=='_')):
            m = re.match(r'r(#*)"', text[i:]); end = '"' + m.group(1); j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end); out.append(re.sub(r'[^\n]', ' ', text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            j += 1; out.append(re.sub(r'[^\n]', ' ', text[i:j])); i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i+4]) or (c=="'" and re.match(r"'\\u\{[0-9a-fA-F]+\}'", text[i:i+12])):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:]); out.append(' ' * len(m.group(0))); i += len(m.group(0))
        else:
            out.append(c); i += 1
    return ''.join(out)
bad = 0
for d in args:
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x != 'tests']
        for f in files:
            if not f.endswith('.rs') or f == 'tests.rs': continue
            p = os.path.join(root, f); t = strip(open(p).read())
            m = re.search(r'^#\[cfg\(test\)\]\s*\n\s*mod\s+\w+\s*\{', t, re.M)
            if m: t = t[:m.start()]
            for fm in re.finditer(r'\bfn\s+(\w+)', t):
                k = t.find('{', fm.end()); semi = t.find(';', fm.end())
                if k < 0 or (0 <= semi < k): continue
                depth = 0; j = k
                while j < len(t):
                    if t[j] == '{': depth += 1
                    elif t[j] == '}':
                        depth -= 1
                        if depth == 0: break
                    j += 1
                start = t.count('\n', 0, fm.start()) + 1; end = t.count('\n', 0, j) + 1
                if end - start + 1 > mx:
                    bad += 1; print(f"{p}:{start} {fm.group(1)} {end-start+1} lines")
sys.exit(1 if bad else 0)
