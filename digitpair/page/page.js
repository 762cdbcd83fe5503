() => {
    // The page's code in the browser, run once as the page loads (app.py hands it to Gradio);
    // the events call its functions (page/browser.py names the calls).
    //
    // The pads report an input event whenever their value is set, not only when someone draws:
    // loading an example or clearing would each ask for an answer again (and upload both pads to
    // do so). So the page is "quiet" from such a change until a finger or the mouse next goes
    // down on a pad, and a quiet pad's input event stops in the browser (`settle` throws, so the
    // event's .success step never runs).
    const page = window.digitpair = {quiet: false, shown: {}};
    document.addEventListener("pointerdown", (event) => {
        if (event.target.closest("#first, #second")) page.quiet = false;
    }, true);
    const boxes = ["first", "second"];
    const frame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 50)));

    // What a pad shows, in short: its dark pixels' count and positions (the pads draw with WebGL;
    // a 2D copy of the canvas reads it back).
    page.ink = (box) => {
        const canvas = [...document.querySelectorAll(`#${box} canvas`)].pop();
        if (!canvas) return "";
        const copy = document.createElement("canvas");
        [copy.width, copy.height] = [canvas.width, canvas.height];
        const context = copy.getContext("2d", {willReadFrequently: true});
        context.drawImage(canvas, 0, 0);
        const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
        let count = 0, where = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i] < 100 && pixels[i + 3] > 128) {
                count += 1;
                where = (where + i) % 1000003;
            }
        }
        return `${count}:${where}`;
    };

    // Before a drawing is read: a moment after the stroke ends. A pad reports its drawing only
    // once it has marked itself edited (gradio's ImageEditor `has_user_edits`), and until then it
    // hands over the value it was last given, the blank paper; read at once, the second pad's
    // first stroke, drawn right after the first pad's, sometimes arrives blank. Quiet is asked
    // again after the wait: a Clear or an example clicked during it has set the pads since the
    // stroke, and the drawing's answer, read after Clear's new generation, would land on the
    // cleared page.
    page.settle = async () => {
        const quiet = () => {
            if (page.quiet) throw new Error("the pads were set by the page, not drawn on");
        };
        quiet();
        await new Promise((done) => setTimeout(done, 100));
        quiet();
    };

    // Answers on their way: asked for (`sending`, handed the request's inputs) and not yet landed
    // (`landed`, after the answer or its failure). The server answers in the order it was asked,
    // but gradio's client holds an answer until the reply to its request to join the queue has
    // come back, and on a loaded machine that reply can come after a later Clear's whole answer:
    // the drawing's answer would then land on the cleared page. So Clear and the examples wait for
    // the answers on their way before they set the pads (`setPads`).
    //
    // A drawing's answer is asked for some time after its stroke passed `settle`: gradio reads the
    // pads first, which takes a while. A Clear or an example that begins meanwhile finds nothing on
    // its way yet. So a drawing's answer asked for once the page has set the pads goes as read in
    // generation -1 (the input at index `generation`), which the server answers with no change.
    page.onTheWay = 0;
    page.sending = (inputs, generation) => {
        page.onTheWay += 1;
        if (generation !== undefined && page.quiet) inputs[generation] = -1;
        return inputs;
    };
    page.landed = () => {
        page.onTheWay = Math.max(0, page.onTheWay - 1);
    };

    // The pads' new values, two image files the server serves (`paths`), from the browser, once
    // the answers on their way have landed (at most `ms`): the images decoded first, so the pads
    // can paint them at once, and the page quiet. A query string that changes every time makes
    // each value new to the pads, which otherwise ignore a value equal to the last.
    page.setPads = async (paths, ms) => {
        page.quiet = true;
        const start = performance.now();
        while (page.onTheWay > 0 && performance.now() - start < ms) await frame();
        page.onTheWay = 0; // one lost on the way (a dropped connection) holds up one Clear, not all
        page.shown = Object.fromEntries(boxes.map((box) => [box, page.ink(box)]));
        const stamp = Date.now();
        const values = paths.map((path) => {
            const url = new URL("gradio_api/file=" + path + "?t=" + stamp, location.href).href;
            const file = {path, url, orig_name: path.split("/").pop(),
                          meta: {_type: "gradio.FileData"}};
            return {url, value: {background: file, layers: [], composite: file}};
        });
        // Decoding first only lets the pads paint at once: a decode that fails (the file slow to
        // arrive, the browser short of memory) must not stop the Clear or the example, whose pads
        // then load the file themselves.
        await Promise.all(values.map(({url}) => {
            const image = new Image();
            image.src = url;
            return image.decode().catch(() => undefined);
        }));
        return values.map(({value}) => value);
    };

    // After the pads got their images: wait until both show something new and steady (the
    // editor paints a new background some frames to seconds later, later on a loaded machine),
    // at most `ms`. The example's answer then never shows beside the pads' old drawings.
    page.painted = async (ms) => {
        const start = performance.now();
        let last = {};
        while (performance.now() - start < ms) {
            await frame();
            const now = Object.fromEntries(boxes.map((box) => [box, page.ink(box)]));
            const changed = (box) => now[box] !== page.shown[box] && now[box] === last[box];
            if (boxes.every(changed)) return;
            last = now;
        }
    };
}
