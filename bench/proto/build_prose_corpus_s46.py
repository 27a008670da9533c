# Plain English prose from documentation on this machine (no network): HTML books, vim help, GNU info,
# license texts. Keeps paragraph-like runs of text; drops code, tables and short lines.
import glob, gzip, html, re, os, random
paras = []
def add_text(t):
    for p in re.split(r'\n\s*\n', t):
        p = ' '.join(l.strip() for l in p.split('\n'))
        p = re.sub(r'\s+', ' ', p).strip()
        if len(p) < 200: continue
        letters = sum(c.isalpha() or c == ' ' for c in p)
        if letters / len(p) < 0.88: continue
        if p.count('(') + p.count('{') + p.count('_') + p.count('|') + p.count('*') > len(p) / 60: continue
        paras.append(p)
root = '/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/'
for d in ['book', 'reference', 'nomicon', 'edition-guide', 'embedded-book', 'cargo', 'rustc']:
    for f in glob.glob(root + d + '/**/*.html', recursive=True):
        if 'print.html' in f: continue
        s = open(f, errors='ignore').read()
        s = re.sub(r'(?s)<(pre|script|style|nav|code)[^>]*>.*?</\1>', ' ', s)
        s = re.sub(r'(?i)</?(p|h[1-6]|li|div|section|blockquote)[^>]*>', '\n\n', s)
        s = re.sub(r'<[^>]+>', '', s)
        add_text(html.unescape(s))
for f in glob.glob('/usr/share/vim/vim90/doc/*.txt'):
    s = open(f, errors='ignore').read()
    s = re.sub(r'\*[^*\s]+\*|\|[^|\s]+\|', '', s)
    add_text(s)
for f in glob.glob('/usr/share/info/*.gz'):
    add_text(gzip.open(f, 'rt', errors='ignore').read())
for f in glob.glob('/usr/share/common-licenses/*'):
    if os.path.isfile(f): add_text(open(f, errors='ignore').read())
seen = set(); out = []
for p in paras:
    if p in seen: continue
    seen.add(p); out.append(p)
random.seed(0); random.shuffle(out)
s = '\n\n'.join(out) + '\n'
open('prose.txt', 'w').write(s)
print(len(out), 'paragraphs', len(s), 'bytes', 'digits', sum(c.isdigit() for c in s) / len(s))
