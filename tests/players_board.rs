//! The board with players who joined: the game applies a configuration
//! (as every node does at the same log index) and the renderer draws what
//! the window shows (tests/window_screenshot.rs checks, under Xvfb, that
//! the window shows exactly the renderer's frame). `RAFTIAN_PLAYERS_OUT=path`
//! writes the frame as a PNG (docs/players.png in the README).

use raftian::game::{Game, MAX_HP, OrderOutcome};
use raftian::window::{self, BoardState, HEIGHT, PLAYER_COLOURS, PLAYER_POSITIONS, SQUARE, WIDTH};

#[test]
fn joined_players_get_their_own_cells_and_colours() {
    let mut game = Game::new();
    // Three nodes from a cluster file, then four joined (ids 3-6), then
    // node 1 left.
    game.set_members(&[0, 1, 2]);
    for id in 3..=6 {
        let ids: Vec<u64> = (0..=id).collect();
        game.set_members(&ids);
    }
    let out = game.set_members(&[0, 2, 3, 4, 5, 6]);
    assert_eq!(
        out,
        OrderOutcome::Players {
            joined: vec![],
            left: vec![1]
        }
    );
    for p in [2, 5, 5, 6, 3, 3, 3, 3] {
        game.apply_order(p);
    }
    let state = BoardState {
        hp: game.hp_by_id(),
        header: "Click a player to attack".into(),
        footer: [
            "dave  FOLLOWER  term 3".into(),
            "leader 2  commit 41  log 42  60 fps".into(),
        ],
    };
    let mut buf = vec![0; WIDTH * HEIGHT];
    window::render(&state, &mut buf);
    let at = |p: usize| {
        let (x, y) = PLAYER_POSITIONS[p - 1];
        buf[(y + SQUARE / 2) * WIDTH + x + SQUARE / 2]
    };
    assert_eq!(at(4), PLAYER_COLOURS[3], "player 4 untouched");
    assert_eq!(at(6), window::square_colour(6, MAX_HP - 30));
    assert_eq!(at(5), window::square_colour(5, MAX_HP - 60));
    assert_eq!(at(3), window::square_colour(3, 0), "dead");
    assert_eq!(at(1), window::GREY, "player 1 left: its cell is empty");
    assert_ne!(at(5), at(6), "each player its colour");
    if let Some(path) = std::env::var_os("RAFTIAN_PLAYERS_OUT") {
        let file = std::fs::File::create(path).expect("create png");
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), WIDTH as u32, HEIGHT as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let bytes: Vec<u8> = buf
            .iter()
            .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
            .collect();
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(&bytes).expect("png data");
    }
}
