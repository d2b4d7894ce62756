"""Probing: per-layer probes (linear, SVC, MLP, BiLSTM-CRF), control tasks, all-layer runs."""

from bioprobe.probing.control import (
    control_label_map,
    control_labels_ner,
    control_labels_ner_pair,
    control_labels_pairs,
    label_distribution,
)
from bioprobe.probing.crf import LinearChainCRF
from bioprobe.probing.estimators import (
    PROBE_KINDS,
    BiLSTMCRFProbe,
    LinearProbe,
    MLPProbe,
    SVCProbe,
    make_probe,
)
from bioprobe.probing.run import ProbeData, bio_to_type, probe_all_layers, split_sentences
from bioprobe.probing.softmax import fit_layers_linear

__all__ = [
    "PROBE_KINDS",
    "BiLSTMCRFProbe",
    "LinearChainCRF",
    "LinearProbe",
    "MLPProbe",
    "ProbeData",
    "SVCProbe",
    "bio_to_type",
    "control_label_map",
    "control_labels_ner",
    "control_labels_ner_pair",
    "control_labels_pairs",
    "fit_layers_linear",
    "label_distribution",
    "make_probe",
    "probe_all_layers",
    "split_sentences",
]
