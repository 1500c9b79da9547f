import pytest

from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece

ENGLISH = [
    "the cat sleeps on the warm mat",
    "a small dog runs in the park",
    "open the file before you save it",
    "the server could not find the page",
    "please enter your password again",
]
FRENCH = [
    "le chat dort sur le tapis chaud",
    "un petit chien court dans le parc",
    "ouvrez le fichier avant de l'enregistrer",
    "le serveur n'a pas trouvé la page",
    "veuillez saisir à nouveau votre mot de passe",
    "l'élève a mangé une crème brûlée à côté du château",
    "où êtes-vous ? garçon, ça suffit ! déjà noël",
]
CORPUS = (
    [f"{a} {b}" for a in ENGLISH + FRENCH for b in ENGLISH + FRENCH if a != b]
    + ENGLISH
    + FRENCH
)


@pytest.fixture(scope="session")
def corpus():
    return list(CORPUS)


@pytest.fixture(scope="session")
def proto():
    return train_sentencepiece(CORPUS, vocab_size=100, seed=0)


@pytest.fixture
def tokenizer(proto):
    return SentencePieceTokenizer(proto=proto)
