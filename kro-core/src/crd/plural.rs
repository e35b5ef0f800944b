//! English pluralisation of a lowercased kind, matching the library upstream
//! kro uses (gobuffalo/flect), so that a kind gets the same resource name
//! (`policies`, `ingresses`, `databases`) here as there.

/// Whole words with an irregular plural.
const IRREGULAR: &[(&str, &str)] = &[
    ("human", "humans"),
    ("matrix", "matrices"),
    ("index", "indices"),
    ("mouse", "mice"),
    ("ox", "oxen"),
    ("quiz", "quizzes"),
    ("series", "series"),
    ("equipment", "equipment"),
    ("information", "information"),
    ("money", "money"),
    ("species", "species"),
    ("fish", "fish"),
    ("sheep", "sheep"),
    ("police", "police"),
    ("goose", "geese"),
    ("tooth", "teeth"),
    ("foot", "feet"),
    ("bus", "buses"),
    ("piano", "pianos"),
    ("halo", "halos"),
    ("photo", "photos"),
    ("aircraft", "aircraft"),
    ("analysis", "analyses"),
    ("antenna", "antennas"),
    ("appendix", "appendices"),
    ("axis", "axes"),
    ("bacterium", "bacteria"),
    ("basis", "bases"),
    ("campus", "campuses"),
    ("codex", "codices"),
    ("corpus", "corpora"),
    ("crisis", "crises"),
    ("criterion", "criteria"),
    ("curriculum", "curriculums"),
    ("deer", "deer"),
    ("diagnosis", "diagnoses"),
    ("die", "dice"),
    ("focus", "foci"),
    ("formula", "formulas"),
    ("fungus", "fungi"),
    ("genus", "genera"),
    ("half", "halves"),
    ("hypothesis", "hypotheses"),
    ("locus", "loci"),
    ("moose", "moose"),
    ("nucleus", "nuclei"),
    ("oasis", "oases"),
    ("offspring", "offspring"),
    ("phenomenon", "phenomena"),
    ("radius", "radiuses"),
    ("referendum", "referendums"),
    ("salmon", "salmon"),
    ("shrimp", "shrimp"),
    ("stimulus", "stimuli"),
    ("syllabus", "syllabi"),
    ("symposium", "symposiums"),
    ("synopsis", "synopses"),
    ("thesis", "theses"),
    ("thief", "thieves"),
    ("trout", "trout"),
    ("tuna", "tuna"),
    ("vertex", "vertices"),
    ("wife", "wives"),
    ("wolf", "wolves"),
    ("datum", "data"),
    ("alias", "aliases"),
    ("shoe", "shoes"),
    ("news", "news"),
    ("foo", "foos"),
];

/// Suffix rules, tried in order; each also leaves words that already end in
/// its plural form alone.
const SUFFIX_RULES: &[(&str, &str)] = &[
    ("campus", "campuses"),
    ("man", "men"),
    ("tz", "tzes"),
    ("alias", "aliases"),
    ("oasis", "oasis"),
    ("wife", "wives"),
    ("basis", "basis"),
    ("atum", "ata"),
    ("adium", "adia"),
    ("actus", "acti"),
    ("irus", "iri"),
    ("iterion", "iteria"),
    ("dium", "diums"),
    ("ovum", "ova"),
    ("ize", "izes"),
    ("dge", "dges"),
    ("focus", "foci"),
    ("child", "children"),
    ("oaf", "oaves"),
    ("randum", "randa"),
    ("base", "bases"),
    ("atus", "atuses"),
    ("ode", "odes"),
    ("person", "people"),
    ("hello", "hellos"),
    ("va", "vae"),
    ("leus", "li"),
    ("oot", "eet"),
    ("oose", "eese"),
    ("box", "boxes"),
    ("ium", "ia"),
    ("sis", "ses"),
    ("nna", "nnas"),
    ("eses", "esis"),
    ("stis", "stes"),
    ("ex", "ices"),
    ("ula", "ulae"),
    ("isis", "ises"),
    ("use", "uses"),
    ("lf", "lves"),
    ("rf", "rves"),
    ("afe", "aves"),
    ("bfe", "bves"),
    ("cfe", "cves"),
    ("dfe", "dves"),
    ("efe", "eves"),
    ("gfe", "gves"),
    ("hfe", "hves"),
    ("ife", "ives"),
    ("jfe", "jves"),
    ("kfe", "kves"),
    ("lfe", "lves"),
    ("mfe", "mves"),
    ("nfe", "nves"),
    ("ofe", "oves"),
    ("pfe", "pves"),
    ("qfe", "qves"),
    ("rfe", "rves"),
    ("sfe", "sves"),
    ("tfe", "tves"),
    ("ufe", "uves"),
    ("vfe", "vves"),
    ("wfe", "wves"),
    ("xfe", "xves"),
    ("yfe", "yves"),
    ("zfe", "zves"),
    ("hive", "hives"),
    ("quy", "quies"),
    ("by", "bies"),
    ("cy", "cies"),
    ("dy", "dies"),
    ("fy", "fies"),
    ("gy", "gies"),
    ("hy", "hies"),
    ("jy", "jies"),
    ("ky", "kies"),
    ("ly", "lies"),
    ("my", "mies"),
    ("ny", "nies"),
    ("py", "pies"),
    ("qy", "qies"),
    ("ry", "ries"),
    ("sy", "sies"),
    ("ty", "ties"),
    ("vy", "vies"),
    ("wy", "wies"),
    ("xy", "xies"),
    ("zy", "zies"),
    ("x", "xes"),
    ("ch", "ches"),
    ("ss", "sses"),
    ("sh", "shes"),
    ("oe", "oes"),
    ("io", "ios"),
    ("o", "oes"),
];

/// The plural of a lowercase word.
pub fn pluralize(word: &str) -> String {
    if word.is_empty() {
        return String::new();
    }
    if IRREGULAR.iter().any(|(_, plural)| *plural == word) {
        return word.to_owned();
    }
    if let Some((_, plural)) = IRREGULAR.iter().find(|(single, _)| *single == word) {
        return (*plural).to_owned();
    }
    for (suffix, plural) in SUFFIX_RULES {
        if let Some(stem) = word.strip_suffix(suffix) {
            return format!("{stem}{plural}");
        }
        if word.ends_with(plural) {
            return word.to_owned();
        }
    }
    if word.ends_with('s') {
        return word.to_owned();
    }
    format!("{word}s")
}

#[cfg(test)]
mod tests {
    use super::pluralize;

    #[test]
    fn like_upstream() {
        for (single, plural) in [
            ("application", "applications"),
            ("webapp", "webapps"),
            ("wordpress", "wordpresses"),
            ("ingress", "ingresses"),
            ("policy", "policies"),
            ("database", "databases"),
            ("gateway", "gateways"),
            ("box", "boxes"),
            ("index", "indices"),
            ("person", "people"),
            ("testaddprintercolumns", "testaddprintercolumns"),
            ("complexapp", "complexapps"),
            ("cache", "caches"),
            ("repo", "repoes"),
            ("status", "statuses"),
            ("", ""),
        ] {
            assert_eq!(pluralize(single), plural, "{single}");
        }
    }
}
