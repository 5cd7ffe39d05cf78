# An independent reference for the GPT-2 tokenizer tests: the algorithm of
# OpenAI's gpt-2/src/encoder.py (bytes_to_unicode, BPE by lowest merge rank,
# the pattern through Python's `regex` module), rewritten here. Not run by the
# test suite (fresh machines lack python3-regex); it made
# gpt2_edge_vectors.json:
#   apt-get install python3-regex   # or pip install regex
#   python3 tests/data/openai_encoder_reference.py data/gpt2 < texts.json > vectors.json
# where texts.json is a JSON list of strings.
import json, regex as re, sys
from functools import lru_cache
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~")+1))+list(range(ord("¡"), ord("¬")+1))+list(range(ord("®"), ord("ÿ")+1))
    cs = bs[:]; n = 0
    for b in range(2**8):
        if b not in bs: bs.append(b); cs.append(2**8+n); n += 1
    return dict(zip(bs, [chr(n) for n in cs]))
def get_pairs(word):
    return set(zip(word, word[1:]))
class Encoder:
    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.byte_encoder = bytes_to_unicode()
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.cache = {}
        self.pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    def bpe(self, token):
        if token in self.cache: return self.cache[token]
        word = tuple(token); pairs = get_pairs(word)
        if not pairs: return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float('inf')))
            if bigram not in self.bpe_ranks: break
            first, second = bigram; new_word = []; i = 0
            while i < len(word):
                try:
                    j = word.index(first, i); new_word.extend(word[i:j]); i = j
                except ValueError:
                    new_word.extend(word[i:]); break
                if word[i] == first and i < len(word)-1 and word[i+1] == second:
                    new_word.append(first+second); i += 2
                else:
                    new_word.append(word[i]); i += 1
            word = tuple(new_word)
            if len(word) == 1: break
            pairs = get_pairs(word)
        word = ' '.join(word); self.cache[token] = word; return word
    def encode(self, text):
        bpe_tokens = []
        for token in re.findall(self.pat, text):
            token = ''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
            bpe_tokens.extend(self.encoder[t] for t in self.bpe(token).split(' '))
        return bpe_tokens
    def pieces(self, text): return re.findall(self.pat, text)
def load(d):
    enc = json.load(open(d+'/encoder.json'))
    merges = [tuple(l.split()) for l in open(d+'/vocab.bpe', encoding='utf-8').read().split('\n')[1:-1]]
    return Encoder(enc, merges)


if __name__ == "__main__":
    reference = load(sys.argv[1])
    texts = json.load(sys.stdin)
    json.dump([{"text": t, "ids": reference.encode(t)} for t in texts], sys.stdout, ensure_ascii=False, indent=1)
