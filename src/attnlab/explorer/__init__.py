"""``attnlab explore``: a local web app over a runs folder (issue 26).

The server (:mod:`attnlab.explorer.app`) reads run folders only: the runs table
(:mod:`attnlab.explorer.index`), one run's config, metrics, curves and report figures, and files
inside the runs folder (:mod:`attnlab.explorer.paths` refuses every path that leaves it). The page
(``static/``) is plain HTML, CSS and JavaScript, with no build step and no network.
"""
