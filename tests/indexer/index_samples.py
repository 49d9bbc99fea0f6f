"""Small source files, one per language of the index's table, used by the indexer tests and
the context tests. Each defines a type with members, a function, a constant and imports."""

from __future__ import annotations

PYTHON = '''"""Shop model."""
import os.path, json as j
from . import sibling
from ..pkg.mod import Thing as T, other
from .x import *
LIMIT = 3


@dataclass
class Cart(Base):
    """A cart.

    More text."""

    size: int = 0

    def add(self, item):
        "Adds an item."

        def inner():
            pass

        return 1
'''

GO = """package store

import (
\t"fmt"
\tst "strings"
\t"github.com/acme/app/internal/model"
)

// Server serves things.
type Server struct {
\tName string
\tport int
}

type Handler interface {
\tServe(x int) error
}

const Limit = 10

// Start starts it.
func (s *Server) Start(ctx int) error {
\treturn nil
}

func NewServer(name string) *Server { return &Server{Name: name} }
"""

RUST = """use crate::model::{Item, Order as O};
use std::collections::HashMap;
mod util;

/// A cart.
pub struct Cart { pub items: Vec<Item>, total: u32 }

pub trait Priced { fn price(&self) -> u32; }

impl Cart {
    /// Adds.
    pub fn add(&mut self, item: Item) -> usize { 0 }
}

pub fn checkout(c: &Cart) -> u32 { c.price() }
const MAX: u32 = 3;
"""

JAVA = """package com.acme.shop;

import com.acme.shop.model.Item;
import java.util.*;

/** A cart of items. */
public class Cart extends Base {
    private final List<Item> items = new ArrayList<>();
    public Cart(int n) {}
    /** Adds an item. */
    public int add(Item item) { return items.size(); }
    enum Color { RED, GREEN }
}
"""

C = """#include "model/item.h"
#include <stdio.h>
#define MAX_ITEMS 10
/* A cart. */
typedef struct cart { int n; struct item *items; } cart_t;
// Adds.
int cart_add(cart_t *c, const struct item *it);
static inline int twice(int x) { return 2 * x; }
"""

CPP = """#include "shop/cart.hpp"
namespace shop {
/// A basket.
class Basket : public Base {
 public:
  int add(const Item& item);
 private:
  int total_;
};
int Basket::add(const Item& item) { return 0; }
}
"""

TYPESCRIPT = """import { Item, Order as O } from "./model/item";
import * as util from "../util";
import Default from "./def";

/** A cart. */
export class Cart extends Base {
  items: Item[] = [];
  /** Adds. */
  add(item: Item): number { return 0; }
}
export interface Priced { price(): number }
export const total = (c: Cart) => c.add(null);
"""

JAVASCRIPT = """import { Item } from "./model.js";
const fs = require("fs");

// A cart.
export class Cart {
  add(item) { return 0; }
}
export function checkout(cart) { return cart.add(null); }
"""
