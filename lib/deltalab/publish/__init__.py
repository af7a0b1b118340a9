"""Publishing the executed study: the static site and the cleaning of executed notebooks, nothing measured here.

    site.py         ``python -m deltalab site``: the executed notebooks of one scale as a static site (Sphinx,
                    MyST-NB), its cells found by tag; its checks (links, a headless browser)
    site_answer.py  the landing page's answer, read from the concluding round's tables
    nbclean.py      ``python -m deltalab.publish.nbclean``: executed notebooks stripped of what changes between
                    identical runs (timings, ids, machine paths)
    site_static/    the site's stylesheet, script and favicon
"""
