#!/usr/bin/env python3
"""layers.py README LIBPOG: check that core's files call downwards only.

Reads the layer table of core/README.md (rows "| N name | `a.c` `b.c` |
..."), lists with nm the global symbols each object of the static library
libpog.a defines and the ones it needs, and fails when a file needs a
symbol that a file of a higher layer defines, or when a file of the
library is missing from the table (or listed twice). Prints every such
call as "file -> file: symbol".
"""
import re
import subprocess
import sys


def read_layers(readme):
    layers = {}
    for line in open(readme, encoding='utf-8'):
        m = re.match(r'\|\s*(\d+)\s+\w+\s*\|([^|]*)\|', line)
        if not m:
            continue
        for name in re.findall(r'`([\w.-]+\.c)`', m.group(2)):
            if name in layers:
                sys.exit('layers.py: %s is listed twice' % name)
            layers[name] = int(m.group(1))
    if not layers:
        sys.exit('layers.py: no layer table in %s' % readme)
    return layers


def read_symbols(lib):
    """(defined: symbol -> source file, needed: [(file, symbol)])"""
    out = subprocess.run(['nm', '-A', lib], check=True, capture_output=True,
                         text=True).stdout
    defined, needed = {}, []
    for line in out.splitlines():
        # "path/libpog.a:store.c.o:0000000000000010 T pog_rdlock"
        # "path/libpog.a:store.c.o:                 U pog_bt_get"
        m = re.match(r'.*?:(?:[^:]*/)?([\w.-]+\.c)\.o:\s*(?:[0-9a-f]+\s+)?(\w)\s+(\S+)$',
                     line)
        if not m:
            continue
        src, kind, sym = m.groups()
        if kind == 'U':
            needed.append((src, sym))
        elif kind.isupper():
            defined[sym] = src
        defined.setdefault('\0' + src, src)  # every object, even empty
    return defined, needed


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    layers = read_layers(sys.argv[1])
    defined, needed = read_symbols(sys.argv[2])
    files = {v for v in defined.values()}
    bad = ['%s is not in the layer table' % f
           for f in sorted(files) if f not in layers]
    for src, sym in sorted(set(needed)):
        dst = defined.get(sym)
        if dst and dst != src and src in layers and dst in layers and \
           layers[dst] > layers[src]:
            bad.append('%s (layer %d) -> %s (layer %d): %s' %
                       (src, layers[src], dst, layers[dst], sym))
    for line in bad:
        print(line)
    print('layers.py: %d files, %d upward calls or unplaced files' %
          (len(files), len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
