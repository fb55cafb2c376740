package report

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// chromium is Debian's chromium, as `make report-png` installs it.
const chromium = "/usr/bin/chromium"

// screenshot renders an HTML file to a PNG with headless chromium, the way
// `make report-png` does.
func screenshot(t *testing.T, htmlPath, pngPath string) {
	t.Helper()
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: chromium's helpers may still be writing to the profile
	// when it returns, and a failed cleanup would fail the test.
	profile, err := os.MkdirTemp("", "report-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--window-size=1400,3000", "--screenshot="+pngPath, "file://"+abs)
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
}

func TestHTMLRendersInHeadlessChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("rendering report.html to a PNG needs Debian's chromium at %s (apt-get install -y chromium, or run make report-png once): %v", chromium, err)
	}
	dir := writeSample(t, "png", sampleInput())
	out := filepath.Join(dir, "report.png")
	screenshot(t, filepath.Join(dir, HTMLFile), out)

	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("chromium wrote no PNG: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", out, err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 3000 {
		t.Errorf("PNG is %dx%d, want the window's 1400x3000", b.Dx(), b.Dy())
	}

	// Not a blank page: many colours (text is anti-aliased, charts are drawn).
	colours := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}] = true
		}
	}
	t.Logf("%s: %d distinct colours", out, len(colours))
	if len(colours) < 200 {
		t.Errorf("the PNG has %d distinct colours: a blank or broken page?", len(colours))
	}
	// Real data: the first series' colour (the us-east… lines of the
	// timeline, the first CDF) covers far more pixels than the legends'
	// thumbnails alone could; the FAIL badge and the fault bands show.
	for _, want := range []struct {
		what     string
		c        color.Color
		tol, min int
	}{
		{"data lines in the first series' colour", palette[0], 12, 500},
		{"the FAIL badge", color.RGBA{0xb9, 0x1c, 0x1c, 0xff}, 12, 2000},
		{"fault bands (band colour over white)", over(bandFill, color.White), 3, 20000},
		{"fault bars in the lane (bar over band)", over(barFill, over(bandFill, color.White)), 3, 1000},
	} {
		n := countNear(img, want.c, want.tol)
		t.Logf("%s: %d pixels", want.what, n)
		if n < want.min {
			t.Errorf("%s: %d pixels, want at least %d", want.what, n, want.min)
		}
	}
}

// over is c composited over an opaque background.
func over(c, bg color.Color) color.RGBA {
	r, g, b, a := c.RGBA() // premultiplied
	br, bgg, bb, _ := bg.RGBA()
	k := 0xffff - a
	return color.RGBA{uint8((r + br*k/0xffff) >> 8), uint8((g + bgg*k/0xffff) >> 8), uint8((b + bb*k/0xffff) >> 8), 0xff}
}

// countNear counts the pixels within tol (per channel, 0–255) of c.
func countNear(img image.Image, c color.Color, tol int) int {
	cr, cg, cb, _ := c.RGBA()
	near := func(a, b uint32) bool { d := int(a>>8) - int(b>>8); return d >= -tol && d <= tol }
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, cr) && near(g, cg) && near(bl, cb) {
				n++
			}
		}
	}
	return n
}
