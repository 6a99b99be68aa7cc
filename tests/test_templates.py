"""Templates: one <mask>, word-initial spaces for BPE, truncation of the longest field only."""

import pytest

from lit_infoprompt.errors import InputError
from lit_infoprompt.tasks.templates import TemplateEncoder, label_word_ids, parse

TEMPLATE = "{premise} ? <mask> , {hypothesis}"


def test_parse_marks_pieces_that_follow_spaces():
    kinds = [(p.kind, p.value, p.space) for p in parse(TEMPLATE)]
    assert kinds == [("field", "premise", False), ("text", "?", True), ("mask", "", True),
                     ("text", ",", True), ("field", "hypothesis", True)]


@pytest.mark.parametrize("template", ["{premise} no mask", "<mask> {premise} <mask>"])
def test_template_needs_exactly_one_mask(template):
    with pytest.raises(InputError, match="exactly one <mask>"):
        parse(template)


def test_encode_places_mask_and_special_tokens(tokenizer):
    enc = TemplateEncoder(TEMPLATE, tokenizer, max_length=64).encode({"premise": "Anna knew", "hypothesis": "it"})
    assert enc.input_ids[0] == tokenizer.cls_token_id and enc.input_ids[-1] == tokenizer.sep_token_id
    assert enc.input_ids[enc.mask_pos] == tokenizer.mask_token_id and enc.input_ids.count(tokenizer.mask_token_id) == 1
    assert not enc.truncated
    assert tokenizer.decode(enc.input_ids[1:enc.mask_pos]) == "Anna knew ?"


def test_truncation_cuts_the_longest_field_never_the_mask(tokenizer):
    long = " ".join(["the river was frozen"] * 40)
    encoder = TemplateEncoder(TEMPLATE, tokenizer, max_length=40, reserved=8)
    enc = encoder.encode({"premise": long, "hypothesis": "the cake was burnt"})
    assert enc.truncated and len(enc.input_ids) == 40 - 8
    assert enc.input_ids[enc.mask_pos] == tokenizer.mask_token_id
    tail = tokenizer.decode(enc.input_ids[enc.mask_pos + 1:-1])
    assert tail.strip() == ", the cake was burnt"  # the short field and the template survive whole


def test_budget_too_small_for_template_fails(tokenizer):
    with pytest.raises(InputError, match="model.max_length=8 leaves"):
        TemplateEncoder(TEMPLATE, tokenizer, max_length=8, reserved=4)


def test_label_words_encode_word_initial(tokenizer):
    spaced = label_word_ids(["yes", "no"], tokenizer, space=True)
    assert spaced == [tokenizer.encode(" yes", add_special_tokens=False), tokenizer.encode(" no", add_special_tokens=False)]
    with pytest.raises(InputError, match="label word '' cannot be encoded"):
        label_word_ids([""], tokenizer, space=False)
