package demo

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/imaging"
)

// The demo's item photos are drawn, not shipped: each dish is a top-down
// illustration (a bowl, plate, board or glass on a table, and what is in
// it) painted from a few shapes at seed time, then put through the same
// imaging pipeline as an upload (checked, re-encoded, content-addressed)
// and stored in the blob store. The repository stays free of binary files
// and every demo shows the same pictures.

// Photo size: 3:2, large enough for the storefront's cards at 2x.
const photoW, photoH = 480, 320

// layer is one shape painted over the picture: coverage says how much of
// a point the shape covers (0 outside, 1 inside), paint its colour there.
type layer struct {
	minX, minY, maxX, maxY float64 // bounding box, in pixels
	inside                 func(x, y float64) bool
	paint                  func(x, y float64) color.NRGBA
}

type canvas struct {
	img    *image.NRGBA
	layers []layer
	rnd    *rand.Rand
}

func newCanvas(seed uint64) *canvas {
	return &canvas{img: image.NewNRGBA(image.Rect(0, 0, photoW, photoH)), rnd: rand.New(rand.NewPCG(seed, 0x1ad1e))}
}

func flat(c color.NRGBA) func(x, y float64) color.NRGBA {
	return func(float64, float64) color.NRGBA { return c }
}

// radial shades from inner at (cx, cy) to outer at radius r.
func radial(cx, cy, r float64, inner, outer color.NRGBA) func(x, y float64) color.NRGBA {
	return func(x, y float64) color.NRGBA {
		t := math.Min(1, math.Hypot(x-cx, y-cy)/r)
		return mix(inner, outer, t)
	}
}

func mix(a, b color.NRGBA, t float64) color.NRGBA {
	l := func(p, q uint8) uint8 { return uint8(float64(p) + (float64(q)-float64(p))*t + .5) }
	return color.NRGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), l(a.A, b.A)}
}

func rgb(hex uint32) color.NRGBA {
	return color.NRGBA{uint8(hex >> 16), uint8(hex >> 8), uint8(hex), 255}
}

func alpha(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

func (c *canvas) circle(cx, cy, r float64, paint func(x, y float64) color.NRGBA) {
	c.layers = append(c.layers, layer{cx - r, cy - r, cx + r, cy + r,
		func(x, y float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r }, paint})
}

// ellipse with radii rx, ry, turned by angle (radians).
func (c *canvas) ellipse(cx, cy, rx, ry, angle float64, paint func(x, y float64) color.NRGBA) {
	s, co := math.Sincos(angle)
	m := math.Max(rx, ry)
	c.layers = append(c.layers, layer{cx - m, cy - m, cx + m, cy + m, func(x, y float64) bool {
		dx, dy := x-cx, y-cy
		u, v := dx*co+dy*s, -dx*s+dy*co
		return (u*u)/(rx*rx)+(v*v)/(ry*ry) <= 1
	}, paint})
}

// rect is a rounded rectangle of half-sizes hw, hh and corner radius rr,
// turned by angle.
func (c *canvas) rect(cx, cy, hw, hh, rr, angle float64, paint func(x, y float64) color.NRGBA) {
	s, co := math.Sincos(angle)
	m := math.Hypot(hw, hh)
	c.layers = append(c.layers, layer{cx - m, cy - m, cx + m, cy + m, func(x, y float64) bool {
		dx, dy := x-cx, y-cy
		u, v := math.Abs(dx*co+dy*s), math.Abs(-dx*s+dy*co)
		qx, qy := u-(hw-rr), v-(hh-rr)
		return math.Hypot(math.Max(qx, 0), math.Max(qy, 0))+math.Min(math.Max(qx, qy), 0) <= rr
	}, paint})
}

// arc is a ring between radii r0 and r1 from angle a0 to a1 (radians).
func (c *canvas) arc(cx, cy, r0, r1, a0, a1 float64, paint func(x, y float64) color.NRGBA) {
	c.layers = append(c.layers, layer{cx - r1, cy - r1, cx + r1, cy + r1, func(x, y float64) bool {
		d := math.Hypot(x-cx, y-cy)
		if d < r0 || d > r1 {
			return false
		}
		a := math.Atan2(y-cy, x-cx)
		for a < a0 {
			a += 2 * math.Pi
		}
		return a <= a1
	}, paint})
}

// scatter drops n shapes at random points within radius r of (cx, cy).
func (c *canvas) scatter(n int, cx, cy, r float64, draw func(x, y, angle float64)) {
	for range n {
		a, d := c.rnd.Float64()*2*math.Pi, r*math.Sqrt(c.rnd.Float64())
		draw(cx+d*math.Cos(a), cy+d*math.Sin(a), c.rnd.Float64()*math.Pi)
	}
}

// render paints the layers in order, 4×4 samples a pixel at the edges.
func (c *canvas) render() *image.NRGBA {
	const ss = 4
	for _, l := range c.layers {
		x0, y0 := max(0, int(l.minX)-1), max(0, int(l.minY)-1)
		x1, y1 := min(photoW-1, int(l.maxX)+1), min(photoH-1, int(l.maxY)+1)
		for py := y0; py <= y1; py++ {
			for px := x0; px <= x1; px++ {
				n := 0
				for sy := range ss {
					for sx := range ss {
						if l.inside(float64(px)+(float64(sx)+.5)/ss, float64(py)+(float64(sy)+.5)/ss) {
							n++
						}
					}
				}
				if n == 0 {
					continue
				}
				p := l.paint(float64(px)+.5, float64(py)+.5)
				a := float64(p.A) / 255 * float64(n) / (ss * ss)
				i := c.img.PixOffset(px, py)
				d := c.img.Pix[i : i+4]
				d[0] = uint8(float64(d[0])*(1-a) + float64(p.R)*a + .5)
				d[1] = uint8(float64(d[1])*(1-a) + float64(p.G)*a + .5)
				d[2] = uint8(float64(d[2])*(1-a) + float64(p.B)*a + .5)
				d[3] = 255
			}
		}
	}
	return c.img
}

// table paints the background: a warm tabletop with soft planks.
func (c *canvas) table(base uint32) {
	b := rgb(base)
	for y := range photoH {
		plank := (y / 64) % 2
		for x := range photoW {
			t := .04*math.Sin(float64(x)/23+float64(y/64)*1.7) + .03*math.Sin(float64(x)/7.3+float64(y)/41)
			if plank == 1 {
				t += .03
			}
			if y%64 == 0 {
				t += .12
			}
			col := mix(b, rgb(0x2b1d12), math.Max(0, t))
			i := c.img.PixOffset(x, y)
			c.img.Pix[i], c.img.Pix[i+1], c.img.Pix[i+2], c.img.Pix[i+3] = col.R, col.G, col.B, 255
		}
	}
}

// bowl paints a bowl centred at (cx, cy) with rim colour rim and contents
// of radius r shaded from inner to outer; it returns the contents' radius.
func (c *canvas) bowl(cx, cy, r float64, rim, inner, outer uint32) float64 {
	c.circle(cx+10, cy+14, r+22, flat(alpha(rgb(0x1a1008), 70))) // shadow
	c.circle(cx, cy, r+22, radial(cx-20, cy-20, r+30, rgb(rim), mix(rgb(rim), rgb(0x000000), .18)))
	c.circle(cx, cy, r+4, flat(alpha(rgb(0x000000), 40)))
	c.circle(cx, cy, r, radial(cx-r/3, cy-r/3, r*1.3, rgb(inner), rgb(outer)))
	return r
}

// glass paints a drink seen from above.
func (c *canvas) glass(cx, cy, r float64, drink uint32) {
	c.circle(cx+12, cy+14, r+10, flat(alpha(rgb(0x1a1008), 60)))
	c.circle(cx, cy, r+10, flat(alpha(rgb(0xf4f7f8), 230)))
	c.circle(cx, cy, r, radial(cx-r/3, cy-r/3, r*1.4, mix(rgb(drink), rgb(0xffffff), .35), rgb(drink)))
	c.scatter(5, cx, cy, r*.55, func(x, y, a float64) {
		c.rect(x, y, 17, 17, 5, a, flat(alpha(rgb(0xffffff), 120)))
	})
	c.arc(cx, cy, r-8, r-3, -2.6, -1.4, flat(alpha(rgb(0xffffff), 160)))
}

func (c *canvas) lemonSlice(x, y, r float64) {
	c.circle(x, y, r, flat(rgb(0xf2d43b)))
	c.circle(x, y, r-4, flat(rgb(0xfbeea0)))
	for i := range 8 {
		a := float64(i) * math.Pi / 4
		c.arc(x, y, 3, r-7, a+.08, a+math.Pi/4-.08, flat(rgb(0xf6dc4e)))
	}
}

func (c *canvas) swirl(cx, cy, r float64, col uint32) {
	c.arc(cx, cy, r*.45, r*.52, -1.2, 2.6, flat(alpha(rgb(col), 230)))
	c.arc(cx+r*.06, cy, r*.22, r*.29, .4, 4.2, flat(alpha(rgb(col), 230)))
}

func (c *canvas) herbs(n int, cx, cy, r float64, col uint32, size float64) {
	c.scatter(n, cx, cy, r, func(x, y, a float64) {
		c.ellipse(x, y, size, size*.45, a, flat(rgb(col)))
	})
}

func (c *canvas) dots(n int, cx, cy, r float64, col uint32, size float64) {
	c.scatter(n, cx, cy, r, func(x, y, _ float64) { c.circle(x, y, size, flat(rgb(col))) })
}

// dishes draws each demo item by name; an item not listed gets no photo.
var dishes = map[string]func(c *canvas){
	"Tomato Basil": func(c *canvas) {
		c.table(0x9b6b43)
		r := c.bowl(240, 160, 112, 0xf7f3ec, 0xe0552a, 0xb43a1c)
		c.swirl(240, 160, r, 0xfff4e6)
		c.herbs(7, 250, 150, r*.7, 0x3f8a3a, 13)
		c.dots(9, 240, 160, r*.8, 0xd9a65c, 5)
	},
	"Chicken Noodle": func(c *canvas) {
		c.table(0x8e6a4b)
		r := c.bowl(240, 160, 112, 0xe9eef2, 0xf0c35c, 0xd39a33)
		c.scatter(22, 240, 160, r*.8, func(x, y, a float64) { c.ellipse(x, y, 22, 3.5, a, flat(rgb(0xfbe7b0))) })
		c.dots(12, 240, 160, r*.8, 0xec7a26, 6)
		c.dots(10, 240, 160, r*.8, 0x8dbb4f, 5)
	},
	"Miso Ramen": func(c *canvas) {
		c.table(0x6e4c35)
		r := c.bowl(240, 160, 116, 0x2d2a29, 0xe3ad64, 0xbd8540)
		c.rect(300, 118, 34, 24, 3, .3, flat(rgb(0x1f2a22)))
		c.circle(192, 190, 30, flat(rgb(0xfdfaf2)))
		c.circle(192, 190, 15, flat(rgb(0xf1a325)))
		c.scatter(16, 240, 160, r*.85, func(x, y, a float64) { c.ellipse(x, y, 26, 4, a, flat(rgb(0xf7e0a0))) })
		c.dots(16, 270, 200, 34, 0xf6cf3a, 5)
		c.scatter(14, 225, 130, 40, func(x, y, _ float64) { c.arc(x, y, 3, 6, 0, 2*math.Pi, flat(rgb(0x4e9a3a))) })
	},
	"Lobster Bisque": func(c *canvas) {
		c.table(0x5f4636)
		r := c.bowl(240, 160, 112, 0xf4efe8, 0xe5875a, 0xc4603a)
		c.swirl(240, 160, r, 0xfde9dc)
		c.dots(14, 240, 160, r*.6, 0x3b6e2f, 3)
	},
	"Lentil & Spinach": func(c *canvas) {
		c.table(0xa07850)
		r := c.bowl(240, 160, 112, 0x3c5a6e, 0xd89a36, 0xb3761f)
		c.herbs(12, 240, 160, r*.8, 0x2f6b2a, 15)
		c.scatter(3, 282, 128, 10, func(x, y, _ float64) { c.lemonSlice(x, y, 16) })
	},
	"Harvest Grain Bowl": func(c *canvas) {
		c.table(0x8f6b48)
		r := c.bowl(240, 160, 120, 0xeae4d8, 0xc9a776, 0xa8844f)
		c.dots(60, 215, 135, r*.5, 0xb88f5a, 4)
		c.scatter(10, 285, 150, 40, func(x, y, a float64) { c.rect(x, y, 11, 11, 3, a, flat(rgb(0xee8a2f))) })
		c.herbs(14, 220, 205, 38, 0x2d5f2a, 16)
		c.arc(240, 160, 60, 66, -2.4, .4, flat(alpha(rgb(0xf3e6cc), 240)))
	},
	"Pho Bowl": func(c *canvas) {
		c.table(0x7a5438)
		r := c.bowl(240, 160, 118, 0xf5f5f2, 0xc98a48, 0x9c5f2b)
		c.scatter(24, 240, 160, r*.8, func(x, y, a float64) { c.ellipse(x, y, 30, 3, a, flat(alpha(rgb(0xfbf7ee), 230))) })
		c.scatter(5, 215, 185, 35, func(x, y, a float64) { c.ellipse(x, y, 24, 14, a, flat(rgb(0x8a4a32))) })
		c.herbs(10, 280, 135, 30, 0x3f9a45, 14)
		c.arc(300, 200, 0, 24, -.3, 2.6, flat(rgb(0x7cc243)))
	},
	"Grilled Cheese": func(c *canvas) {
		c.table(0x6f4c34)
		c.rect(246, 168, 190, 120, 18, 0, flat(alpha(rgb(0x1a1008), 60)))
		c.rect(240, 160, 190, 120, 18, 0, flat(rgb(0xc99b63)))
		c.rect(175, 160, 78, 74, 16, -.12, radial(175, 160, 100, rgb(0xe8b354), rgb(0xb9792c)))
		c.rect(305, 160, 78, 74, 16, .1, radial(305, 160, 100, rgb(0xe8b354), rgb(0xb9792c)))
		c.rect(240, 226, 44, 9, 8, 0, flat(rgb(0xf5b622)))
		c.rect(240, 94, 30, 7, 7, 0, flat(rgb(0xf5b622)))
	},
	"Garlic Focaccia": func(c *canvas) {
		c.table(0x8a623f)
		c.rect(246, 168, 170, 112, 26, .05, flat(alpha(rgb(0x1a1008), 60)))
		c.rect(240, 160, 170, 112, 26, .05, radial(220, 140, 220, rgb(0xf1c96e), rgb(0xc58a36)))
		c.dots(30, 240, 160, 140, 0xb27228, 7)
		c.herbs(24, 240, 160, 140, 0x3e6b2b, 7)
		c.dots(12, 240, 160, 140, 0xfaf1d6, 3)
	},
	"Lemonade": func(c *canvas) {
		c.table(0xa9825a)
		c.glass(230, 160, 100, 0xf5e27a)
		c.lemonSlice(300, 105, 38)
		c.herbs(3, 180, 110, 12, 0x4c9a3c, 16)
	},
	"Iced Tea": func(c *canvas) {
		c.table(0x957150)
		c.glass(230, 160, 100, 0xa8581c)
		c.lemonSlice(298, 208, 34)
		c.herbs(4, 190, 115, 16, 0x3f8e3f, 17)
	},
	"Chocolate Pot de Crème": func(c *canvas) {
		c.table(0x7d5a40)
		c.bowl(240, 160, 92, 0xfbfaf7, 0x5b2e1a, 0x3a1c10)
		c.circle(250, 140, 30, radial(240, 132, 36, rgb(0xffffff), rgb(0xf1e6d6)))
		c.circle(276, 166, 12, flat(rgb(0xb3172c)))
		c.herbs(2, 262, 120, 6, 0x3f8a3a, 11)
	},
}

// photo draws the named dish as a JPEG; ok is false for an unknown dish.
func photo(name string, seed uint64) (data []byte, ok bool, err error) {
	draw, ok := dishes[name]
	if !ok {
		return nil, false, nil
	}
	c := newCanvas(seed)
	draw(c)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, c.render(), &jpeg.Options{Quality: 82}); err != nil {
		return nil, false, err
	}
	return buf.Bytes(), true, nil
}

// savePhoto draws the dish, runs it through the upload pipeline and stores
// it; key is "" for a dish without a drawing.
func savePhoto(ctx context.Context, blobs blob.Store, name string, seed uint64) (string, error) {
	data, ok, err := photo(name, seed)
	if err != nil || !ok {
		return "", err
	}
	img, err := imaging.NewProcessor(imaging.Limits{}, 1).Process(ctx, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("demo: photo of %s: %w", name, err)
	}
	if err := imaging.Save(ctx, blobs, img); err != nil {
		return "", fmt.Errorf("demo: photo of %s: %w", name, err)
	}
	return img.Key, nil
}
