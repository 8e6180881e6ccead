"""The lecture's schematics of the six conv adapters (nbs/11_adapters_explained.ipynb): which matrix unfolding of the
update each method factors, the shapes of its factors, and where DoRA's magnitude sits. Drawn with matplotlib as SVG,
deterministically (fixed `svg.hashsalt`, no date in the metadata), so the committed files change only when a drawing
does.

    python tools/lecture_schematics.py [--out figures/lecture]

The drawings use a small conv, c_in = 4, c_out = 6, a 3 x 3 kernel and rank R = 2 (the lecture's running example):
one square per entry, thick lines between output channels (rows) and input channels (columns) of each unfolding."""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

C_IN, C_OUT, K, R = 4, 6, 3, 2
SQ = 0.13                                              # side of one entry's square (inches = data units)
COLORS = {'W': '#dddddd', 'dW': '#f4c7a1', 'B': '#9ecae1', 'A': '#a1d99b', 'out': '#9ecae1', 'in': '#a1d99b',
          'h': '#fdd49e', 'w': '#d4b9da', 'm': '#fb6a4a', 'V': '#f4c7a1'}
ROOT = Path(__file__).resolve().parent.parent
FIGURES = ('lora_c', 'convlora', 'cp_lora', 'dora')


def _matrix(ax, x, y, rows, cols, color, row_block=0, col_block=0, label='', rows_label='', cols_label='',
            highlight_col=None):
    """A rows x cols matrix of squares with its top-left corner at (x, y) (y grows down); thick lines every
    `row_block` rows and `col_block` columns; `label` inside above, side labels left and below. Returns its box."""
    w, h = cols * SQ, rows * SQ
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor='none'))
    if highlight_col is not None:
        ax.add_patch(Rectangle((x + highlight_col * SQ, y), SQ, h, facecolor='#555555', alpha=0.35, edgecolor='none'))
    for i in range(rows + 1):
        thick = i in (0, rows) or (row_block and i % row_block == 0)
        ax.plot([x, x + w], [y + i * SQ] * 2, color='k', lw=1.1 if thick else 0.25, solid_capstyle='butt')
    for j in range(cols + 1):
        thick = j in (0, cols) or (col_block and j % col_block == 0)
        ax.plot([x + j * SQ] * 2, [y, y + h], color='k', lw=1.1 if thick else 0.25, solid_capstyle='butt')
    if label: ax.text(x + w / 2, y - 0.12, label, ha='center', va='bottom', fontsize=10)
    if rows_label: ax.text(x - 0.08, y + h / 2, rows_label, ha='right', va='center', fontsize=8.5, rotation=90)
    if cols_label: ax.text(x + w / 2, y + h + 0.08, cols_label, ha='center', va='top', fontsize=8.5)
    return x, y, w, h


def _canvas(width, title):
    "A figure `width` inches wide (its height set by `_finish`), data units in inches, y pointing down, a title."
    fig = plt.figure(figsize=(width, 4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis('off')
    ax.text(0.2, 0.3, title, fontsize=13, fontweight='bold', va='center')
    return fig, ax


def _finish(fig, ax, width, y, notes=()):
    "Write `notes` (one line each) from y down, then size the figure to its content."
    for line in notes:
        ax.text(0.2, y, line, fontsize=9, va='top', color='#333333')
        y += 0.3
    height = y + 0.1
    fig.set_size_inches(width, height)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    return fig


def _op(ax, x, y, text, size=14):
    ax.text(x, y, text, ha='center', va='center', fontsize=size)


def lora_c():
    "LoRA-C: the (c_out k_h) x (c_in k_w) unfolding is B A, rank <= R."
    W = 8.4
    fig, ax = _canvas(W, 'LoRA-C (DoRA-C): low rank of the $(c_{out}k_h) \\times (c_{in}k_w)$ unfolding')
    top, x = 1.0, 0.75
    _, _, w, h = _matrix(ax, x, top, C_OUT * K, C_IN * K, COLORS['dW'], K, K, '$\\Delta W$ unfolded',
                         'rows $(o, h)$: $c_{out}k_h$', 'columns $(i, w)$: $c_{in}k_w$')
    _op(ax, x + w + 0.3, top + h / 2, '=')
    xb = x + w + 0.6
    _, _, wb, _ = _matrix(ax, xb, top, C_OUT * K, R, COLORS['B'], K, 0, '$B$', '', '$R$')
    ax.text(xb + wb + 0.06, top + h / 2, '$c_{out}k_h$', ha='left', va='center', fontsize=8.5, rotation=90)
    _op(ax, xb + wb + 0.5, top + h / 2, '$\\times$')
    xa = xb + wb + 1.0
    ya = top + h / 2 - R * SQ / 2
    _matrix(ax, xa, ya, R, C_IN * K, COLORS['A'], 0, K, '$A$', '$R$', '$c_{in}k_w$')
    ax.text(xa, ya + R * SQ + 0.45, 'stored as $B$: ($c_{out}$, $k_h$, $R$), $A$: ($R$, $c_{in}$, $k_w$)\n'
            'thick lines: one output channel $o$ (rows, $k_h$ each),\none input channel $i$ (columns, $k_w$ each)',
            fontsize=8.5, va='top')
    return _finish(fig, ax, W, top + h + 0.45, [
        'parameters $(c_{in}+c_{out})\\,k\\,R$;   rank $\\leq \\min(R,\\ c_{out}k_h,\\ c_{in}k_w)$;   '
        '$\\Delta W_{o,i,h,w} = \\sum_r B_{o,h,r}\\,A_{r,i,w}$',
        'drawn: $c_{in} = 4$, $c_{out} = 6$, $k_h = k_w = 3$, $R = 2$ (one square per entry)'])


def convlora():
    "convLoRA: the c_out x (c_in k_h k_w) unfolding is B A, rank <= R."
    W = 8.4
    fig, ax = _canvas(W, 'convLoRA (convDoRA): low rank of the $c_{out} \\times (c_{in}k_hk_w)$ unfolding')
    top, x = 1.0, 0.55
    _, _, w, h = _matrix(ax, x, top, C_OUT, C_IN * K * K, COLORS['dW'], 0, K * K, '$\\Delta W$ unfolded',
                         '$c_{out}$', 'columns $(i, h, w)$: $c_{in}k_hk_w$')
    _op(ax, x + w + 0.3, top + h / 2, '=')
    xb = x + w + 0.6
    _, _, wb, _ = _matrix(ax, xb, top, C_OUT, R, COLORS['B'], 0, 0, '$B$', '', '$R$')
    ax.text(xb + wb + 0.06, top + h / 2, '$c_{out}$', ha='left', va='center', fontsize=8.5, rotation=90)
    ya = top + h + 1.0
    _op(ax, xb + wb / 2, top + h + 0.55, '$\\times$')
    _matrix(ax, x, ya, R, C_IN * K * K, COLORS['A'], 0, K * K, '$A$: a bank of $R$ filters $c_{in} \\times k_h '
            '\\times k_w$, stored ($R$, $c_{in}$, $k_h$, $k_w$)', '$R$', '$c_{in}k_hk_w$')
    return _finish(fig, ax, W, ya + R * SQ + 0.45, [
        'parameters $(c_{in}k_hk_w+c_{out})\\,R$;   rank $\\leq \\min(R,\\ c_{out},\\ c_{in}k_hk_w)$;   '
        '$\\Delta W_{o,i,h,w} = \\sum_r B_{o,r}\\,A_{r,i,h,w}$',
        'thick lines: one input channel $i$ ($k_hk_w$ columns each); as convs: $k \\times k$ to $R$ channels, '
        'then $1 \\times 1$'])


def cp_lora():
    "CP-LoRA: a sum of R outer products of the columns of four factor matrices, one per mode."
    W = 8.4
    fig, ax = _canvas(W, 'CP-LoRA (CP-DoRA): a rank-$R$ CP tensor, low rank in every unfolding')
    top, x = 1.0, 0.75
    for name, rows, key, side in (('$A^{(out)}$', C_OUT, 'out', '$c_{out}$'), ('$A^{(in)}$', C_IN, 'in', '$c_{in}$'),
                                  ('$A^{(h)}$', K, 'h', '$k_h$'), ('$A^{(w)}$', K, 'w', '$k_w$')):
        _, _, w, _ = _matrix(ax, x, top, rows, R, COLORS[key], 0, 0, name, '', '$R$', highlight_col=0)
        ax.text(x - 0.06, top + rows * SQ / 2, side, ha='right', va='center', fontsize=8.5)
        x += w + 0.8
    ax.text(x - 0.2, top - 0.1, 'column $r$ of each factor (shaded: $r = 1$) gives one\n'
            'rank-one tensor $a^{(out)}_r \\circ a^{(in)}_r \\circ a^{(h)}_r \\circ a^{(w)}_r$\n'
            'of shape $c_{out} \\times c_{in} \\times k_h \\times k_w$; $\\Delta W$ sums $R$ of them.\n'
            'Every unfolding of $\\Delta W$ has rank $\\leq R$.\n'
            '$A^{(out)} = 0$ at the start (LoRA\'s $B = 0$).', fontsize=9, va='top')
    return _finish(fig, ax, W, top + C_OUT * SQ + 0.5, [
        'parameters $(c_{in}+c_{out}+k_h+k_w)\\,R$;   '
        '$\\Delta W_{o,i,h,w} = \\sum_r A^{(out)}_{o,r}A^{(in)}_{i,r}A^{(h)}_{h,r}A^{(w)}_{w,r}$',
        'as convs: $1\\times1$ ($c_{in} \\to R$), depthwise $k_h \\times 1$, depthwise $1 \\times k_w$, '
        '$1\\times1$ ($R \\to c_{out}$): Lebedev et al. (2015)'])


def dora():
    "DoRA: W = m * V / ||V||_c_out, V = W0 + s dW (dW of LoRA-C, convLoRA or CP-LoRA); m has one entry per row."
    W = 8.4
    fig, ax = _canvas(W, 'DoRA-C, convDoRA, CP-DoRA: a length per output channel')
    top, x = 1.0, 0.95
    _op(ax, 0.5, top + C_OUT * SQ / 2, '$W =$', 12)
    _, _, wm, h = _matrix(ax, x, top, C_OUT, 1, COLORS['m'], 0, 0, '$m$', '$c_{out}$', '')
    _op(ax, x + wm + 0.3, top + h / 2, '$\\odot$')
    xv = x + wm + 0.6
    _, _, wv, _ = _matrix(ax, xv, top, C_OUT, C_IN * K * K, COLORS['V'], 0, K * K,
                          '$V / \\|V\\|_{c_{out}}$, each row scaled to length 1', '', '$c_{in}k_hk_w$')
    ax.text(0.2, top + h + 0.5,
            '$V = W_0 + s\\,\\Delta W$, with $\\Delta W$ of LoRA-C (DoRA-C), convLoRA (convDoRA) '
            'or CP-LoRA (CP-DoRA):\n'
            'the low-rank factors turn the rows (filters) of $V$; their length cancels in $V / \\|V\\|$.\n'
            'The magnitude $m$ ($c_{out}$ numbers) is trained directly and sets each filter\'s length;'
            ' it starts at $\\|W_0\\|_{c_{out}}$.', fontsize=9, va='top')
    return _finish(fig, ax, W, top + h + 1.25, [
        '$W_{o,i,h,w} = m_o\\, V_{o,i,h,w} \\,/\\, \\|V_{o,:,:,:}\\|$;   '
        'parameters: those of the method $+\\ c_{out}$',
        'saharank lets the gradient flow through $\\|V\\|$ (detach_norm=False); PEFT detaches it (DoRA paper, 4.3)'])


def write_all(out: Path) -> list[Path]:
    "Write every schematic as `out/<name>.svg`, deterministically; returns the paths."
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with plt.rc_context({'svg.hashsalt': 'saharank-lecture', 'svg.fonttype': 'path', 'font.family': 'DejaVu Sans',
                         'mathtext.fontset': 'dejavusans'}):
        for name in FIGURES:
            fig = globals()[name]()
            path = out / f'{name}.svg'
            fig.savefig(path, format='svg', metadata={'Date': None})
            plt.close(fig)
            paths.append(path)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', type=Path, default=ROOT / 'figures' / 'lecture', help='folder of the SVG files')
    for path in write_all(p.parse_args(argv).out): print(path)


if __name__ == '__main__':
    main()
